"""The dashboard login flow in a real browser (issue 17, part 6).

Headless Debian chromium driven by Playwright (never `playwright install`): open a page of
the test dashboard served by the edge from GATHERING_DASHBOARD_DIR, get sent to /login, see
a wrong password refused, log in, come back to the page, see it call /api/agents and open /ws
with the session cookie (which scripts cannot read), log out, and see the API refuse the
cookie afterwards. On failure a screenshot is written to the artefacts folder.

Usage: login_flow.py BASE_URL EMAIL PASSWORD ARTEFACTS_DIR
"""

import os
import sys
import traceback
from urllib.parse import quote

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 15_000


def main() -> int:
    base, email, password, artefacts = sys.argv[1:5]
    chromium = os.environ.get("GATHERING_CHROMIUM", "/usr/bin/chromium")
    os.makedirs(artefacts, exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        step = "start"
        try:
            step = "unauthenticated navigation goes to /login"
            wanted = "/agents/overview?tab=all"
            page.goto(base + wanted)
            expect(page).to_have_url(f"{base}/login?next={quote(wanted, safe='')}")
            expect(page.get_by_role("heading", name="Sign in to GatheRing")).to_be_visible()

            step = "a wrong password is refused with a visible error"
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")

            step = "login brings the browser back to the page"
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(base + wanted)
            expect(page.locator("#path")).to_have_text("/agents/overview")

            step = "the page calls /api/agents and opens /ws with the cookie"
            expect(page.locator("#agents")).to_have_text("agents: 200 total=0")
            expect(page.locator("#ws")).to_have_text("ws: connected")
            assert page.evaluate("document.cookie") == "", "session cookies must be HttpOnly"

            step = "logout revokes the session; the API refuses afterwards"
            page.get_by_role("button", name="Log out").click()
            expect(page.locator("#logout-result")).to_have_text("logged out: 200")
            expect(page.locator("#after")).to_have_text("after logout: 401")
            page.goto(base + "/")
            expect(page).to_have_url(f"{base}/login?next=%2F")
        except Exception:
            shot = os.path.join(artefacts, "login_flow-failure.png")
            try:
                page.screenshot(path=shot, full_page=True)
                print(f"screenshot of the failure: {shot}", file=sys.stderr)
            except Exception as e:  # the page itself may be gone
                print(f"no screenshot: {e}", file=sys.stderr)
            print(f"failed at step: {step}; url: {page.url}", file=sys.stderr)
            print("console:\n" + "\n".join(console), file=sys.stderr)
            traceback.print_exc()
            return 1
        finally:
            browser.close()
    print("login flow ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
