"""Read links the way their recipient does: from the mail the outbox delivered over SMTP."""
import re

from portal.services import outbox


def delivered_link(smtp, address: str, path: str) -> str:
    """Deliver what is due and return the ``path`` link of the newest mail to ``address``."""
    outbox.deliver_all_due()
    received = smtp.to(address)
    assert received, f"no mail was delivered to {address}"
    match = re.search(rf"http://portal\.test({re.escape(path)}[\w-]+)", received[-1].text)
    assert match, f"no {path} link in the mail to {address}"
    return match.group(1)
