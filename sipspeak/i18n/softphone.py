"""The catalogue's section for the operator's browser softphone (the widget and its page)."""

from __future__ import annotations

SOFTPHONE_RU: dict[str, str] = {
    "menu.softphone": "Софтфон",
    "softphone.page_hint": "Держите эту страницу открытой, чтобы принимать звонки в браузере: "
                           "звонок приходит сюда и на SIP-телефон одновременно.",
    "softphone.title": "Софтфон",
    "softphone.connecting": "Подключение…",
    "softphone.ready": "Готов принимать звонки",
    "softphone.offline": "Нет связи с сервером, переподключение…",
    "softphone.unavailable": "Телефония не запущена",
    "softphone.signed_out": "Сеанс завершён: войдите снова",
    "softphone.incoming": "Входящий звонок",
    "softphone.in_call": "Разговор",
    "softphone.number": "Номер",
    "softphone.project": "Проект",
    "softphone.answer": "Ответить",
    "softphone.decline": "Отклонить",
    "softphone.hangup": "Положить трубку",
    "softphone.mute": "Выключить микрофон",
    "softphone.unmute": "Включить микрофон",
    "softphone.no_microphone": "Нет доступа к микрофону",
    "softphone.ended": "Звонок завершён",
    "softphone.error": "Ошибка софтфона",
    "softphone.auto_answer": "Автоответ",
}

SOFTPHONE_EN: dict[str, str] = {
    "menu.softphone": "Softphone",
    "softphone.page_hint": "Keep this page open to take calls in the browser: a call rings "
                           "here and on your SIP phone at the same time.",
    "softphone.title": "Softphone",
    "softphone.connecting": "Connecting…",
    "softphone.ready": "Ready for calls",
    "softphone.offline": "No connection to the server, reconnecting…",
    "softphone.unavailable": "Telephony is not running",
    "softphone.signed_out": "Signed out: sign in again",
    "softphone.incoming": "Incoming call",
    "softphone.in_call": "In a call",
    "softphone.number": "Number",
    "softphone.project": "Project",
    "softphone.answer": "Answer",
    "softphone.decline": "Decline",
    "softphone.hangup": "Hang up",
    "softphone.mute": "Mute",
    "softphone.unmute": "Unmute",
    "softphone.no_microphone": "No access to the microphone",
    "softphone.ended": "Call ended",
    "softphone.error": "Softphone error",
    "softphone.auto_answer": "Auto-answer",
}
