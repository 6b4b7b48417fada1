"""Which contacts the running services have on an operator's screen now.

The workspace (:mod:`.workspace`) pops up the card of every call joined to an operator or
ringing him and, during wrap-up «В карточке», keeps the card of his latest call open until he
saves it.  A change that deletes contacts (the duplicate check, the contacts' «Удалить» in
:mod:`.card`) leaves those alone; this is what only memory knows of them, read at one instant
(no await in between).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..crm.dedupe import InUse
from ..dialer.agents import AgentState

if TYPE_CHECKING:
    from ..app import Services

__all__ = ["in_use_now"]


def in_use_now(services: Services) -> InUse:
    """The contacts of the call service's calls (live ones, and ended ones whose record is
    still being written) and the operators in wrap-up on the dialer's roster."""
    center = services.calls
    contacts = frozenset() if center is None else frozenset(
        call.contact_id for call in center.calls.values() if call.contact_id is not None)
    campaigns = services.campaigns
    wrap_up = frozenset() if campaigns is None else frozenset(
        m.agent_id for m in campaigns.roster.machines() if m.state is AgentState.WRAP_UP)
    return InUse(contacts=contacts, wrap_up_operators=wrap_up)
