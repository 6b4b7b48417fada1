"""Repository classes: one per entity of the manual, SQL only here."""

from .activity import CallsRepo, NotificationsRepo, OperatorIntervalsRepo
from .blacklist import BlacklistRepo
from .card_items import CommentsRepo, TasksRepo
from .contacts import ContactsRepo, TagsRepo, UploadsRepo
from .files import FilesRepo
from .leads import CrmLeadsRepo
from .money import TrunkMoneyRepo
from .people import GroupsRepo, TokensRepo, UsersRepo, WebSessionsRepo
from .phones import PhoneBindingsRepo
from .projects import ProjectsRepo
from .robot import RobotRepo
from .settings import SettingsRepo, StatusesRepo, TrunksRepo
from .webhooks import WebhookDeliveriesRepo, WebhooksRepo

__all__ = [
    "BlacklistRepo", "CallsRepo", "CommentsRepo", "ContactsRepo", "CrmLeadsRepo", "FilesRepo",
    "GroupsRepo",
    "NotificationsRepo", "OperatorIntervalsRepo", "PhoneBindingsRepo", "ProjectsRepo", "RobotRepo",
    "SettingsRepo", "StatusesRepo",
    "TagsRepo", "TasksRepo", "TokensRepo", "TrunkMoneyRepo", "TrunksRepo", "UploadsRepo",
    "UsersRepo",
    "WebSessionsRepo",
    "WebhookDeliveriesRepo", "WebhooksRepo",
]
