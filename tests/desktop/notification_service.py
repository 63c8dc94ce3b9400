"""A desktop notification service for tests: owns org.freedesktop.Notifications on the
session bus and prints each call it gets as one JSON line (member, signature, body).

    python -m tests.desktop.notification_service
"""

from __future__ import annotations

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"


def main() -> int:
    connection = open_dbus_connection(bus="SESSION")
    owned = connection.send_and_get_reply(message_bus.RequestName(NAME, 4)).body[0]
    print(json.dumps({"ready": owned == 1}), flush=True)
    next_id = 0
    while True:
        message = connection.receive()
        if message.header.message_type != MessageType.method_call:
            continue
        fields = message.header.fields
        member = fields.get(HeaderFields.member)
        signature = fields.get(HeaderFields.signature, "")
        print(
            json.dumps({"member": member, "signature": signature, "body": message.body}),
            flush=True,
        )
        if member == "Notify" and signature == "susssasa{sv}i":
            next_id += 1
            connection.send(new_method_return(message, "u", (next_id,)))
        elif member == "GetServerInformation":
            connection.send(new_method_return(message, "ssss", ("test", "tests", "1", "1.2")))
        else:  # as a strict daemon does
            connection.send(new_error(message, "org.freedesktop.DBus.Error.InvalidArgs"))


if __name__ == "__main__":
    sys.exit(main())
