"""The live web UI (`retinue ui`): runs, their agent trees, approvals and replays, in a browser."""

from .approver import UIApprover
from .server import UIServer, serve

__all__ = ["UIApprover", "UIServer", "serve"]
