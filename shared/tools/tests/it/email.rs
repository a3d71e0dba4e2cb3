//! The email skill against real local servers: aiosmtpd (STARTTLS required, AUTH) delivering
//! into a Maildir that Dovecot serves over IMAPS, both with certificates of a test CA that
//! the skill trusts through its CA setting (no check turned off).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use gathering_tools::skills::email::settings::{EmailSettings, parse_server};
use gathering_tools::{Toolbox, ToolsConfig};
use serde_json::{Value, json};

use crate::helpers::{TempDir, config, ctx};
use crate::peers::{Peer, free_port, make_certificates, python, wait_port};

const USER: &str = "bot@example.org";
const SMTP_PASSWORD: &str = "smtp-secret-7f3a";
const IMAP_PASSWORD: &str = "imap-secret-91c2";

/// An SMTP server that takes mail after STARTTLS and AUTH and files it into the Maildir of
/// each recipient that has one (others are accepted and dropped).
const SMTP_SERVER: &str = r#"
import mailbox, os, signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, homes, user, password = sys.argv[1:]

class Deliver:
    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            box = os.path.join(homes, rcpt.lower(), "Maildir")
            if os.path.isdir(box):
                mailbox.Maildir(box, create=False).add(envelope.original_content)
        return "250 OK delivered"

def authenticate(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
controller = Controller(Deliver(), hostname="127.0.0.1", port=int(port), tls_context=tls,
                        require_starttls=True, authenticator=authenticate, auth_require_tls=True)
controller.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
"#;

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The two servers, their certificates and the mailbox they share.
pub struct MailServers {
    pub dir: TempDir,
    pub smtp_port: u16,
    pub imap_port: u16,
    _smtp: Peer,
    _imap: Peer,
}

impl MailServers {
    pub fn start() -> MailServers {
        let dir = TempDir::new();
        let d = dir.path();
        make_certificates(d);
        // Dovecot runs the mail processes as a non-root user: as root, as its own `dovecot`
        // user (so the Maildir is world-writable; it lives in a private test folder).
        let root = id(&["-u"]) == "0";
        let (mail_uid, mail_gid) = if root {
            (id(&["-u", "dovecot"]), id(&["-g", "dovecot"]))
        } else {
            (id(&["-u"]), id(&["-g"]))
        };
        let (internal, login) = if root {
            ("dovecot".to_owned(), "dovenull".to_owned())
        } else {
            (id(&["-un"]), id(&["-un"]))
        };
        let maildir = d.join("home").join(USER).join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for p in [
            d.join("home"),
            d.join("home").join(USER),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::write(
            d.join("passwd"),
            format!("{USER}:{{PLAIN}}{IMAP_PASSWORD}\n"),
        )
        .unwrap();
        let imap_port = free_port();
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/server.crt
ssl_key = <{d}/server.key
disable_plaintext_auth = yes
auth_mechanisms = plain
default_internal_user = {internal}
default_internal_group = {internal}
default_login_user = {login}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {imap_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"#,
            d = d.display()
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let imap = Peer::spawn(
            Command::new("/usr/sbin/dovecot")
                .arg("-F")
                .arg("-c")
                .arg(d.join("dovecot.conf")),
            "dovecot (scripts/setup-os.sh installs dovecot-imapd)",
        );
        let smtp_port = free_port();
        let smtp = Peer::spawn_ready(
            Command::new(python())
                .arg("-c")
                .arg(SMTP_SERVER)
                .arg(smtp_port.to_string())
                .arg(d.join("server.crt"))
                .arg(d.join("server.key"))
                .arg(d.join("home"))
                .arg(USER)
                .arg(SMTP_PASSWORD),
            "aiosmtpd (scripts/setup-test-python.sh)",
        );
        wait_port(imap_port, "dovecot");
        MailServers {
            dir,
            smtp_port,
            imap_port,
            _smtp: smtp,
            _imap: imap,
        }
    }

    /// The skill's settings as an operator would give them.
    pub fn settings(&self, smtp_password: &str) -> EmailSettings {
        let user = USER.replace('@', "%40");
        EmailSettings {
            smtp: Some(
                parse_server(
                    &format!("smtp://{user}:{smtp_password}@127.0.0.1:{}", self.smtp_port),
                    &[("smtp", 587, false)],
                )
                .unwrap(),
            ),
            imap: Some(
                parse_server(
                    &format!(
                        "imaps://{user}:{IMAP_PASSWORD}@127.0.0.1:{}",
                        self.imap_port
                    ),
                    &[("imaps", 993, true)],
                )
                .unwrap(),
            ),
            from: Some(USER.into()),
            ca_pem: Some(std::fs::read(self.dir.path().join("ca.crt")).unwrap()),
        }
    }

    pub fn dovecot_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

fn toolbox_with(email: EmailSettings) -> Toolbox {
    Toolbox::new(
        None,
        ToolsConfig {
            email,
            ..config("")
        },
    )
    .unwrap()
}

async fn list_until(tb: &Toolbox, subject: &str) -> Value {
    for _ in 0..100 {
        let r = tb
            .execute("email_list", json!({"limit": 10}), &ctx(None))
            .await;
        assert!(r.success, "{r:?}");
        if let Some(m) = r.data["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"] == subject)
        {
            return m.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("'{subject}' never arrived");
}

#[tokio::test]
async fn a_message_sent_over_smtp_is_read_back_over_imap() {
    let servers = MailServers::start();
    let tb = toolbox_with(servers.settings(SMTP_PASSWORD));
    let project = TempDir::new();
    project.write("reports/.keep", "");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::write(project.path().join("reports/figures.bin"), &bytes).unwrap();
    let send = json!({
        "to": [USER], "cc": ["Someone Else <else@example.org>"],
        "subject": "Weekly report ✓", "body": "Hello,\nthe figures are attached.\n",
        "attachments": [{"path": "reports/figures.bin", "name": "figures week 49.bin"}],
    });

    // Mail leaves in the operator's name: the tool asks first.
    let unconfirmed = gathering_tools::CallContext::new(gathering_tools::Grants::all())
        .project(Some(project.root()));
    let r = tb.execute("email_send", send.clone(), &unconfirmed).await;
    assert!(r.needs_confirmation && !r.success, "{r:?}");

    let r = tb.execute("email_send", send, &ctx(Some(&project))).await;
    assert!(r.success, "{r:?} {}", servers.dovecot_log());
    assert_eq!(r.data["recipients"], 2);
    let message_id = r.data["message_id"].as_str().unwrap().to_owned();

    let listed = list_until(&tb, "Weekly report ✓").await;
    assert_eq!(listed["from"][0]["address"], USER);
    assert_eq!(listed["to"][0]["address"], USER);
    assert_eq!(listed["cc"][0]["name"], "Someone Else");
    assert_eq!(listed["message_id"], message_id.as_str());
    let uid = listed["uid"].as_u64().unwrap();

    let r = tb
        .execute("email_read", json!({"uid": uid}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["subject"], "Weekly report ✓");
    assert_eq!(
        r.data["text"].as_str().unwrap().replace("\r\n", "\n"),
        "Hello,\nthe figures are attached.\n"
    );
    assert_eq!(r.data["truncated"], false);
    assert_eq!(
        r.data["attachments"],
        json!([{"name": "figures week 49.bin", "content_type": "application/octet-stream", "size": 3000}])
    );
    // Reading marked nothing (EXAMINE + BODY.PEEK).
    let again = list_until(&tb, "Weekly report ✓").await;
    assert!(
        !again["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains("Seen")),
        "{again}"
    );

    let r = tb
        .execute("email_list", json!({"since": "2999-01-01"}), &ctx(None))
        .await;
    assert_eq!(
        (
            r.data["total"].as_u64(),
            r.data["messages"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{r:?}"
    );
    let r = tb.execute("email_folders", json!({}), &ctx(None)).await;
    assert!(
        r.data["folders"]
            .as_array()
            .unwrap()
            .contains(&json!("INBOX")),
        "{r:?}"
    );
    let r = tb
        .execute("email_read", json!({"uid": 999}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("not_found"), "{r:?}");
    let r = tb
        .execute(
            "email_list",
            json!({"folder": "No Such Folder"}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
}

#[tokio::test]
async fn sends_over_the_limits_or_without_configuration_are_refused() {
    let servers = MailServers::start();
    let tb = toolbox_with(servers.settings(SMTP_PASSWORD));
    let project = TempDir::new();
    let c = ctx(Some(&project));
    let many: Vec<String> = (0..11).map(|n| format!("r{n}@example.org")).collect();
    let r = tb
        .execute(
            "email_send",
            json!({"to": many, "cc": many, "subject": "s", "body": "b"}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    assert!(r.message.contains("22 recipients"), "{r:?}");

    let r = tb
        .execute(
            "email_send",
            json!({"to": ["not an address"], "subject": "s", "body": "b"}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");

    std::fs::write(
        project.path().join("big.bin"),
        vec![7u8; 5 * 1024 * 1024 + 1],
    )
    .unwrap();
    let r = tb
        .execute(
            "email_send",
            json!({"to": [USER], "subject": "s", "body": "b", "attachments": [{"path": "big.bin"}]}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("too_large"), "{r:?}");
    let r = tb
        .execute(
            "email_send",
            json!({"to": [USER], "subject": "s", "body": "b", "attachments": [{"path": "../outside"}]}),
            &c,
        )
        .await;
    assert!(!r.success, "{r:?}");

    // A wrong password: the server's refusal, and the password in no message.
    let wrong = toolbox_with(servers.settings("wrong-password-55"));
    let r = wrong
        .execute(
            "email_send",
            json!({"to": [USER], "subject": "s", "body": "b"}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    assert!(r.message.contains("535"), "{r:?}");
    assert!(
        !r.message.contains("wrong-password-55") && !r.message.contains(SMTP_PASSWORD),
        "{r:?}"
    );

    // A server whose certificate is not trusted (no CA configured): no send, no read.
    let mut untrusted = servers.settings(SMTP_PASSWORD);
    untrusted.ca_pem = None;
    let tb2 = toolbox_with(untrusted);
    let r = tb2
        .execute(
            "email_send",
            json!({"to": [USER], "subject": "s", "body": "b"}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    let r = tb2.execute("email_list", json!({}), &ctx(None)).await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    assert!(r.message.contains("TLS"), "{r:?}");
    assert!(
        !std::fs::read_dir(
            servers
                .dir
                .path()
                .join("home")
                .join(USER)
                .join("Maildir/new")
        )
        .unwrap()
        .any(|_| true),
        "nothing was delivered"
    );

    // Nothing configured: a clear answer naming the operator's setting.
    let none = toolbox_with(EmailSettings::default());
    let r = none
        .execute(
            "email_send",
            json!({"to": [USER], "subject": "s", "body": "b"}),
            &c,
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"), "{r:?}");
    assert!(r.message.contains("GATHERING_EMAIL_SMTP_URL"), "{r:?}");
    let r = none.execute("email_list", json!({}), &ctx(None)).await;
    assert!(r.message.contains("GATHERING_EMAIL_IMAP_URL"), "{r:?}");
}

#[test]
fn the_settings_come_from_the_environment() {
    let d = TempDir::new();
    make_certificates(d.path());
    let vars: std::collections::HashMap<String, String> = [
        (
            "GATHERING_EMAIL_SMTP_URL",
            "smtps://u%40x.org:pw@mail.x.org",
        ),
        (
            "GATHERING_EMAIL_IMAP_URL",
            "imaps://u%40x.org:pw@mail.x.org:1993",
        ),
        (
            "GATHERING_EMAIL_CA_FILE",
            &d.path().join("ca.crt").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let s = EmailSettings::from_vars(&vars).unwrap();
    let smtp = s.smtp.unwrap();
    assert_eq!((smtp.port, smtp.implicit_tls), (465, true));
    assert_eq!(s.imap.unwrap().port, 1993);
    assert_eq!(s.from.as_deref(), Some("u@x.org"));
    assert!(s.ca_pem.is_some());
    let mut bad = vars.clone();
    bad.insert("GATHERING_EMAIL_SMTP_URL".into(), "http://u:pw@h".into());
    let e = EmailSettings::from_vars(&bad).unwrap_err().to_string();
    assert!(
        e.contains("GATHERING_EMAIL_SMTP_URL") && !e.contains("pw"),
        "{e}"
    );
}

#[tokio::test]
async fn imap_refusals_carry_the_server_answer_and_never_the_password() {
    let servers = MailServers::start();
    let mut settings = servers.settings(SMTP_PASSWORD);
    settings.imap = Some(
        parse_server(
            &format!(
                "imaps://{}:wrong-imap-pw-3e1@127.0.0.1:{}",
                USER.replace('@', "%40"),
                servers.imap_port
            ),
            &[("imaps", 993, true)],
        )
        .unwrap(),
    );
    let r = toolbox_with(settings)
        .execute("email_folders", json!({}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    assert!(r.message.contains("IMAP login failed: NO"), "{r:?}");
    assert!(!r.message.contains("wrong-imap-pw-3e1"), "{r:?}");

    // A folder name with quotes and a backslash goes out quoted: the server answers NO (no
    // such folder), not BAD (a garbled command).
    let tb = toolbox_with(servers.settings(SMTP_PASSWORD));
    let r = tb
        .execute("email_list", json!({"folder": r#"a "b" \c"#}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("execution_failed"), "{r:?}");
    assert!(
        r.message.contains(r#"EXAMINE of 'a "b" \c' failed: NO"#),
        "{r:?}"
    );
    // A line break never reaches the server.
    let r = tb
        .execute(
            "email_read",
            json!({"uid": 1, "folder": "INBOX\r\nG9 LOGOUT"}),
            &ctx(None),
        )
        .await;
    assert!(!r.success, "{r:?}");
    assert!(!servers.dovecot_log().contains("G9"));
}
