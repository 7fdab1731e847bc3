//! `courier pub/sub` over NATS TLS with `--tls-ca` and JWT `--creds`, and
//! NKey credentials refused with exit code 4, against a real nats-server
//! configured by generated files.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use courier_tests::certs::TestPki;
use courier_tests::jwt::Operator;
use courier_tests::NatsServer;

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    courier().args(args).output().expect("run courier")
}

#[test]
fn pub_and_sub_over_tls_with_creds() {
    let pki = TestPki::generate();
    let operator = Operator::generate();
    let config = pki.nats_config("s.conf", "", false, &operator.server_config());
    let server = NatsServer::start_with(&["-c", config.to_str().unwrap()]);
    let url = format!("tls://127.0.0.1:{}", server.port());
    let (_, creds) = operator.user("cli");
    let creds_file = pki.dir.path().join("cli.creds");
    std::fs::write(&creds_file, creds).unwrap();
    let (ca, creds_file) = (pki.ca_file.to_str().unwrap(), creds_file.to_str().unwrap());

    let mut sub = courier()
        .args(["sub", &url, "secure.cli", "--count", "2", "--raw"])
        .args(["--tls-ca", ca, "--creds", creds_file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(sub.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("subscribed"), "{line}");

    let out = run(&[
        "pub",
        &url,
        "secure.cli",
        "sealed",
        "--count",
        "2",
        "--tls-ca",
        ca,
        "--creds",
        creds_file,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = sub.wait_with_output().unwrap();
    assert!(done.status.success());
    assert_eq!(String::from_utf8_lossy(&done.stdout), "sealed\nsealed\n");

    // No CA given: the private CA is not trusted.
    let out = run(&["pub", &url, "secure.cli", "x", "--creds", creds_file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate was refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_nkey_is_refused_with_exit_code_4() {
    let allowed = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.conf");
    std::fs::write(
        &config,
        format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
            allowed.public_key()
        ),
    )
    .unwrap();
    let server = NatsServer::start_with(&["-c", config.to_str().unwrap()]);
    let seed = dir.path().join("other.nk");
    std::fs::write(&seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    let out = run(&[
        "pub",
        &server.url(),
        "s",
        "x",
        "--nkey",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = dir.path().join("good.nk");
    std::fs::write(&good, allowed.seed().unwrap()).unwrap();
    let out = run(&[
        "pub",
        &server.url(),
        "s",
        "x",
        "--nkey",
        good.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
