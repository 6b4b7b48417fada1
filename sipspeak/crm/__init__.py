"""Domain rules that are neither telephony nor HTTP: contacts, enrichment, blacklist, reports."""
