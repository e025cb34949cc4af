"""The server page's Network box: this computer's addresses, the port, the invites (gui).

Like a Qt Designer form's ``setupUi``, the builder makes the box's widgets as attributes of the
page (``page.port``, ``page.invite``, ``page.invite_list``…); the page gives them their behaviour.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

from .facility_invites import InviteList
from .widgets import row

ADD_FACILITY_TIP = "Give one facility its own invite and join code, bound to its name"
ADVICE = (
    "Facilities on this network paste the invite as it is. Sites elsewhere cannot reach a LAN "
    "address: put this computer on a VPN such as Tailscale or ZeroTier (then use its 100.x or VPN "
    "address below), forward the port on your router, use a tunnel (e.g. ngrok tcp 8080) or run the "
    "server on a cloud machine — and enter that address under “Address in the invite”."
)


def network_box(page: QWidget) -> QGroupBox:
    """Addresses, port (with its free/in-use mark), the address in the invite, the shared invite,
    the invites per facility, and advice for sites beyond this network."""
    net = QGroupBox("Network")
    page.addresses = QLabel()
    page.addresses.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    page.addresses.setWordWrap(True)
    page.port = QSpinBox(minimum=1, maximum=65535, value=8080)
    page.port_state = QLabel()
    page.advertise = QLineEdit(placeholderText="automatic (this computer's LAN address)")
    page.invite = QLineEdit(readOnly=True, placeholderText="the invite appears here once the server runs")
    page.copy = QPushButton("&Copy invite")
    page.copy.setEnabled(False)
    advice = QLabel(ADVICE)
    advice.setWordWrap(True)
    form = QFormLayout(net)
    form.addRow("This computer", page.addresses)
    form.addRow("Port", row(page.port, page.port_state, None))
    form.addRow("Address in the invite", page.advertise)
    page.invite.setToolTip(
        "The shared invite, for a quick trial: anyone who holds it may join, under any name. "
        "Give each facility its own with Add facility…"
    )
    form.addRow("Shared invite", row(page.invite, page.copy))
    page.add_facility = QPushButton("&Add facility…")
    page.add_facility.setToolTip(ADD_FACILITY_TIP)
    page.invite_list = InviteList(page._revoke_invite)
    form.addRow("Facility invites", row(page.add_facility, None))
    form.addRow(page.invite_list)
    form.addRow(advice)
    return net
