"""Plain records returned and accepted by the repositories.

Timestamps are UTC epoch milliseconds; dates are ISO strings; money is integer kopecks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "supervisor", "operator"]
ROLES: tuple[Role, ...] = ("admin", "supervisor", "operator")
Strategy = Literal["ring_all", "round_robin", "longest_idle", "fewest_calls", "linear"]
STRATEGIES: tuple[Strategy, ...] = ("ring_all", "round_robin", "longest_idle", "fewest_calls", "linear")
DialMode = Literal["unlimited", "progressive", "predictive"]
DIAL_MODES: tuple[DialMode, ...] = ("unlimited", "progressive", "predictive")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    role: Role
    full_name: str
    email: str
    phone: str
    password_hash: str
    extension: str | None
    sip_password: str | None
    trunk_id: int | None
    language: str
    created_at: int
    updated_at: int
    deleted_at: int | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    created_at: int
    member_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    name: str
    color: str
    active: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Trunk:
    id: int
    name: str
    username: str
    password: str
    host: str
    inbound_project_id: int | None
    robot: bool
    active: bool
    price_per_minute_kopecks: int
    billing_increment_s: int
    created_at: int
    updated_at: int
    inbound_sources: str = ""
    """Networks the provider calls from besides its host's addresses ("185.45.152.0/24, …")."""


BalanceKind = Literal["set", "topup"]
BALANCE_KINDS: tuple[BalanceKind, ...] = ("set", "topup")


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    """A balance of a trunk's account an administrator recorded (``trunk_balance_records``)."""

    id: int
    trunk_id: int
    kind: BalanceKind
    amount_kopecks: int
    """What was entered: the balance (set) or the sum added (top-up)."""
    balance_kopecks: int
    """The account's balance right after this record."""
    spent_mark_kopecks: int
    """The trunk's total spend when it was recorded (calls priced later come off the balance)."""
    comment: str
    user_id: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class TrunkAccount:
    """A trunk's money now: its last recorded balance less what its calls cost since."""

    trunk_id: int
    trunk_name: str
    spent_kopecks: int
    """Every priced call of the trunk, all time."""
    low_balance_kopecks: int | None
    low_notified: bool
    last: BalanceRecord | None = None

    @property
    def spent_since_kopecks(self) -> int:
        return 0 if self.last is None else self.spent_kopecks - self.last.spent_mark_kopecks

    @property
    def balance_kopecks(self) -> int | None:
        """None until a balance is recorded."""
        return None if self.last is None else self.last.balance_kopecks - self.spent_since_kopecks

    @property
    def low(self) -> bool:
        """Below its threshold (a trunk without a threshold or a balance is never low)."""
        balance = self.balance_kopecks
        return (balance is not None and self.low_balance_kopecks is not None
                and balance < self.low_balance_kopecks)


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    created_at: int
    updated_at: int
    deleted_at: int | None
    show_numbers: bool
    amd_enabled: bool
    amd_params: str
    robot: bool
    starts_on: str | None
    ends_on: str | None
    timezone: str
    client_time_from: str
    client_time_to: str
    caller_id: str
    trunk_id: int | None
    queue_timeout_s: int
    operator_timeout_s: int
    strategy: Strategy
    operator_auto_answer: bool
    music_on_hold: bool
    supervisor_id: int | None
    operator_tasks_enabled: bool
    dial_timeout_s: int
    global_timeout_enabled: bool
    global_timeout_s: int
    max_concurrent_calls: int
    dial_mode: DialMode
    predictive_percent: int
    max_attempts: int
    retry_busy_intervals: str
    retry_busy_attempts: int
    retry_no_answer_intervals: str
    retry_no_answer_attempts: int
    retry_machine_intervals: str
    retry_machine_attempts: int
    retry_lost_intervals: str
    retry_lost_attempts: int
    script_html: str
    crm_status_id: int | None
    bitrix_host: str
    bitrix_title: str
    bitrix_login: str
    bitrix_password: str
    bitrix_source_id: str
    bitrix_assigned_by_id: str
    sms_template: str
    email_template: str
    launched: bool
    call_from_end: bool
    group_ids: tuple[int, ...] = ()
    status_ids: tuple[int, ...] = ()
    abandon_message_file_id: int | None = None
    """A WAV of the file manager played to a customer no operator took (None: none)."""
    withdraw_after_s: int = 15
    """Predictive dialling: a dial still ringing this long may be withdrawn when no operator
    would be free for its person (0: never)."""


@dataclass(frozen=True, slots=True)
class CardField:
    id: int
    project_id: int
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class WeekdayInterval:
    """A calling interval of one weekday (0 = Monday) in the call-center time zone."""

    weekday: int
    start_time: str
    end_time: str


@dataclass(frozen=True, slots=True)
class TaskRule:
    operator_id: int
    status_id: int


@dataclass(frozen=True, slots=True)
class Upload:
    id: int
    project_id: int
    filename: str
    created_by: int | None
    created_at: int
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    state: str = "done"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewContact:
    """A contact ready to be stored: phone in E.164, enrichment already done."""

    phone: str
    full_name: str | None = None
    email: str | None = None
    birth_date: str | None = None
    position: str | None = None
    city: str | None = None
    address: str | None = None
    description: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    region: str | None = None
    timezone: str | None = None
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    project_id: int
    upload_id: int | None
    phone: str
    full_name: str | None
    email: str | None
    birth_date: str | None
    position: str | None
    city: str | None
    address: str | None
    description: str | None
    custom: str
    region: str | None
    timezone: str | None
    carrier: str | None
    status_id: int | None
    robot_status: str | None
    dial_state: str
    operator_id: int | None
    attempts: int
    next_attempt_at: int | None
    last_call_at: int | None
    created_at: int
    updated_at: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    contact_id: int
    user_id: int | None
    text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    contact_id: int
    operator_id: int | None
    text: str
    due_at: int
    auto_call: bool
    done_at: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Call:
    id: int
    project_id: int | None
    contact_id: int | None
    operator_id: int | None
    trunk_id: int | None
    sip_call_id: str | None
    started_at: int
    answered_at: int | None
    bridged_at: int | None
    ended_at: int | None
    direction: str
    kind: str
    contact_phone: str
    from_number: str
    to_number: str
    duration_ms: int
    billing_ms: int
    dial_ms: int
    wait_ms: int
    talk_ms: int
    client_status: str
    operator_status: str
    contact_status_id: int | None
    region: str | None
    timezone: str | None
    result: str
    sip_code: int | None
    amd_result: str | None
    tags: str
    robot_status: str | None
    price_kopecks: int
    recording_path: str | None


@dataclass(frozen=True, slots=True)
class CallFilter:
    """The calls report's filters (manual §6.2); ``None`` / empty = not filtered."""

    started_from: int | None = None
    started_to: int | None = None
    project_ids: frozenset[int] | None = None
    """The projects the reader may see (None = all)."""
    project_id: int | None = None
    operator_id: int | None = None
    direction: str | None = None
    result: str | None = None
    phone: str = ""
    """Digits found in the contact's, the caller's or the called number."""
    only_operator_id: int | None = None
    """An operator reader: his own calls only, whatever the other filters say."""
    phone_shown_only: bool = False
    """The number search looks only at calls of projects that show numbers (an operator
    must not find a hidden number's digits by searching for them)."""
    numbers_masked: bool = False
    """The reader sees the customer's number masked where the call's project hides numbers
    (an operator): sorting by a number column orders by the masked form, so the order
    tells nothing of the hidden digits."""
    group_id: int | None = None
    """Calls of operators in this group."""
    tag: str = ""
    """Calls of contacts carrying this tag (§5.5)."""
    kind: str | None = None
    client_status: str | None = None
    operator_status: str | None = None
    sort: str = "date"
    """One of ``CALL_SORTS``: the column the report is ordered by (then by id)."""
    descending: bool = True


CALL_SORTS: tuple[str, ...] = (
    "project", "id", "date", "direction", "kind", "phone", "from", "to", "duration", "billing",
    "dial", "wait", "talk", "client_status", "operator_status", "contact", "operator", "region",
    "timezone", "result", "tags", "robot_status", "price")
"""The calls report's columns it can be sorted by (every column of §6.2)."""


@dataclass(frozen=True, slots=True)
class ContactFilter:
    """The contacts report's filters (manual §6.1); ``None`` / empty = not filtered."""

    project_ids: frozenset[int] | None = None
    """The projects the reader may see (None = all)."""
    project_id: int | None = None
    phone: str = ""
    """Digits found in the number."""
    created_from: int | None = None
    created_to: int | None = None
    status_id: int | None = None
    operator_id: int | None = None
    group_id: int | None = None
    """Contacts of operators in this group."""
    comment: str = ""
    """Text found in one of the contact's comments."""
    order_by_updated: bool = False
    tag: str = ""
    """Contacts carrying this tag (§5.5)."""


@dataclass(frozen=True, slots=True)
class ContactReportRow:
    """A contact with what the contacts report shows beside it."""

    contact: Contact
    project_name: str
    status_name: str
    operator_name: str
    tags: str
    last_comment: str
    comments: int
    tasks: int


@dataclass(frozen=True, slots=True)
class CallReportRow:
    """A call with the names the calls report shows beside it."""

    call: Call
    project_name: str
    operator_name: str
    contact_name: str
    shows_numbers: bool = True
    """The project's «Показывать номера» (a call of no project: True)."""


@dataclass(frozen=True, slots=True)
class OperatorInterval:
    id: int
    user_id: int
    state: str
    project_id: int | None
    started_at: int
    ended_at: int | None


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    phone: str
    comment: str
    created_by: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    parent_id: int | None
    name: str
    created_by: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: int
    folder_id: int | None
    name: str
    stored_name: str
    size: int
    created_by: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    user_id: int | None
    level: str
    text: str
    created_at: int
    read_at: int | None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_id: int
    token_hash: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class WebSession:
    id_hash: str
    user_id: int
    csrf_token: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class PhoneBindingRow:
    """A stored registration of an operator's phone (``phone_bindings``)."""

    extension: str
    contact: str
    expires_at: int
    q: str | None
    call_id: str
    cseq: int
    source: str | None
    user_agent: str | None
    credentials_tag: str = ""
    """Tells whether the operator's SIP credentials changed since (see calls.phones)."""


@dataclass(frozen=True, slots=True)
class CrmLead:
    """A lead for a project's CRM (``crm_leads``): what to send and how delivery went."""

    id: int
    project_id: int | None
    contact_id: int | None
    user_id: int | None
    state: str
    """pending / sent / failed"""
    fields: str
    """The lead's fields as JSON (the CRM's field names)."""
    attempts: int
    next_attempt_at: int
    crm_id: str | None
    error: str
    created_at: int
    sent_at: int | None


@dataclass(frozen=True, slots=True)
class Webhook:
    """An endpoint that call events are POSTed to (``webhooks``)."""

    id: int
    name: str
    url: str
    events: str
    """The event types sent, space-separated."""
    secret: str
    active: bool
    full_numbers: bool
    """The customer's number whole even where the project hides numbers."""
    failing_since: int | None
    """A delivery failed for good at this time and none was taken since."""
    last_error: str
    created_at: int
    updated_at: int

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.events.split())


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event for one endpoint (``webhook_deliveries``): the body and how delivery went."""

    id: int
    webhook_id: int
    event_id: str
    event_type: str
    body: str
    state: str
    """pending / sent / failed"""
    attempts: int
    next_attempt_at: int
    last_status: int | None
    error: str
    created_at: int
    sent_at: int | None
