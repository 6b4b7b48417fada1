"""The catalogue's section for the integrations: a project's CRM (manual §5.2.7)."""

from __future__ import annotations

INTEGRATIONS_RU: dict[str, str] = {
    "crm.error.not_configured": "в проекте не настроена интеграция с CRM (хост и логин Bitrix)",
    "crm.error.refused": "CRM не приняла лид ({reason})",
    "crm.error.unavailable": "отправка лидов не запущена",
    "crm.note.failed": "Лид не отправлен в CRM: проект «{project}», номер {phone}: {reason}",
    "crm.label.status": "Статус",
    "crm.label.operator": "Оператор",
    "crm.label.comment": "Комментарий",
    "crm.ui.send_lead": "Отправить заявку",
    "crm.ui.lead_queued": "Заявка принята и отправляется в CRM",
}

INTEGRATIONS_EN: dict[str, str] = {
    "crm.error.not_configured": "the project has no CRM integration (Bitrix host and login)",
    "crm.error.refused": "the CRM did not accept the lead ({reason})",
    "crm.error.unavailable": "lead delivery is not running",
    "crm.note.failed": "Lead not sent to the CRM: project «{project}», number {phone}: {reason}",
    "crm.label.status": "Status",
    "crm.label.operator": "Operator",
    "crm.label.comment": "Comment",
    "crm.ui.send_lead": "Send the lead",
    "crm.ui.lead_queued": "The lead is on its way to the CRM",
}
