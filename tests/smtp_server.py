"""A real SMTP server on loopback (aiosmtpd) that records mail and refuses chosen recipients."""
import asyncio
import email
import email.policy
import socket
from dataclasses import dataclass
from dataclasses import field

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


@dataclass
class RecordingHandler:
    messages: list[Received] = field(default_factory=list)
    # address -> "550 5.1.1 ..." permanent, or "451 ..." temporary
    refuse: dict[str, str] = field(default_factory=dict)
    # Seconds between recording a message and answering "250" (a slow server).
    delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.lower() in [r.lower() for r in m.recipients]]

    def reset(self) -> None:
        self.messages.clear()
        self.refuse.clear()
        self.delay = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> tuple[Controller, RecordingHandler]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, handler
