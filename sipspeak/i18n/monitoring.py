"""The catalogue's section for «Мониторинг» (§7)."""

from __future__ import annotations

MONITORING_RU: dict[str, str] = {
    "monitoring.strategy": "Стратегия",
    "monitoring.phones": "Абоненты: В сети: {online} | Не в сети: {offline}",
    "monitoring.number": "№",
    "monitoring.name": "Имя",
    "monitoring.status": "Статус",
    "monitoring.time": "Время",
    "monitoring.waiting": "Звонки в очереди",
    "monitoring.stopped": "Проект остановлен: звонки завершаются",
    "monitoring.empty": "Нет очередей: ни один проект не запущен и не принимает входящие",
    "monitoring.unavailable": "Дозвон не запущен: мониторинг недоступен",
    "monitoring.disconnected": "Нет связи с сервером, переподключение…",
    "monitoring.state.offline": "Не в системе",
    "monitoring.state.online": "Не в сети",
    "monitoring.state.available": "Свободен",
    "monitoring.state.paused": "Пауза",
    "monitoring.state.do_not_disturb": "Не беспокоить",
    "monitoring.state.wrap_up": "В карточке",
    "monitoring.state.talking": "В разговоре",
    "monitoring.state.ringing": "Ожидание ответа",
    "monitoring.state.ringback": "Слушает гудки",
}

MONITORING_EN: dict[str, str] = {
    "monitoring.strategy": "Strategy",
    "monitoring.phones": "Phones: online: {online} | offline: {offline}",
    "monitoring.number": "#",
    "monitoring.name": "Name",
    "monitoring.status": "Status",
    "monitoring.time": "Time",
    "monitoring.waiting": "Calls in the queue",
    "monitoring.stopped": "Project stopped: its calls are finishing",
    "monitoring.empty": "No queues: no project is launched or takes inbound calls",
    "monitoring.unavailable": "The dialer is not running: monitoring is unavailable",
    "monitoring.disconnected": "No connection to the server, reconnecting…",
    "monitoring.state.offline": "Signed out",
    "monitoring.state.online": "Not on the line",
    "monitoring.state.available": "Free",
    "monitoring.state.paused": "Pause",
    "monitoring.state.do_not_disturb": "Do not disturb",
    "monitoring.state.wrap_up": "Wrap-up",
    "monitoring.state.talking": "Talking",
    "monitoring.state.ringing": "Ringing",
    "monitoring.state.ringback": "Hearing ringback",
}
