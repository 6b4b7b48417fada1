"""Package data of sipspeak.crm: the numbering index and the region to time zone table."""
