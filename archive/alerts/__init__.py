"""Alerts: saved searches that notify their channels of new (and changed) notices.

``manager``: the rules, planning and delivery of an archive's alerts;
``channels``: channel URLs, their secrets, masking, and sending through Apprise.
"""

from ..errors import AlertError
from .channels import AlertSettings, apprise_notify, expand, load_alert_settings, masked
from .manager import Alerts, RunReport

__all__ = ["AlertError", "AlertSettings", "Alerts", "RunReport", "apprise_notify", "expand", "load_alert_settings",
           "masked"]
