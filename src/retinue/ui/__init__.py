"""The live web UI (`retinue ui`): runs as trees and timelines, approvals, replays, eval reports, improvements."""

from .approver import UIApprover
from .server import UIServer, serve

__all__ = ["UIApprover", "UIServer", "serve"]
