"""Domain rules that are neither telephony nor HTTP: contacts, enrichment, blacklist, reports.

Contacts pipeline:

- :mod:`.phones` — any typed number → E.164, or a reason in Russian;
- :mod:`.numbering`, :mod:`.numbering_build`, :mod:`.numbering_refresh` — the Russian
  numbering index (operator, region, IANA zone per range) and ``sipspeak numbering refresh``;
- :mod:`.enrichment` — region, zone, UTC offset and carrier of a number;
- :mod:`.xlsx_stream`, :mod:`.contact_reader` — streaming XLSX / CSV readers;
- :mod:`.contact_fields`, :mod:`.contact_rows` — column mapping and row validation;
- :mod:`.contacts_import`, :mod:`.contacts_store` — preview and import into a project.
"""
