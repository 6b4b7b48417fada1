"""Integrations with outside systems: a project's CRM (Bitrix24, manual §5.2.7)."""
