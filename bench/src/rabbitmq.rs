//! A RabbitMQ node for the AMQP scenarios (Debian's rabbitmq-server, as
//! the tests use): its own node name, ports and directories in a temp dir,
//! in its own process group (killed on drop), and the broker's own view of
//! a queue's depth (a passive queue.declare) to check what clients claim.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::free_port;

// The node layout the tests use too (one copy: tests/support/rabbitmq_node.rs).
#[path = "../../tests/support/rabbitmq_node.rs"]
mod rabbitmq_node;
use rabbitmq_node::NodeLayout;

/// A running node.
pub struct RabbitNode {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl RabbitNode {
    /// Starts a node (10-30 s); `cpu`: pin it (taskset) like the other brokers.
    pub fn start(cpu: Option<u32>) -> Result<Self, String> {
        let script = rabbitmq_node::script("rabbitmq-server")?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let d = dir.path();
        let port = free_port();
        let dist = free_port();
        let node = format!("bench-{}-{port}@localhost", std::process::id());
        let layout = NodeLayout {
            dir: d,
            node: &node,
            amqp_port: port,
            dist_port: dist,
            erl_args: "+sbwt none +sbwtdcpu none +sbwtdio none",
        };
        layout
            .write_files(
                &format!(
                    "listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n\
                     disk_free_limit.absolute = 1MB\nlog.console = false\nlog.file.level = warning\n"
                ),
                "[]",
            )
            .map_err(|e| e.to_string())?;
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&script);
                c
            }
            None => Command::new(&script),
        };
        layout.apply_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start rabbitmq-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        // The AMQP listener opens once boot has finished.
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "rabbitmq-server exited ({status}) before listening"
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("RabbitMQ did not listen within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(RabbitNode { dir, port, child })
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The broker's count of ready messages in `queue` (passive declare
    /// through lapin, which is not the client under test in this check),
    /// then deletes the queue when `delete`.
    pub fn queue_depth(&self, queue: &str, delete: bool) -> Result<u32, String> {
        use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
        use lapin::types::FieldTable;
        use lapin::{Connection, ConnectionProperties};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let conn = Connection::connect(&self.url(), ConnectionProperties::default())
                .await
                .map_err(|e| e.to_string())?;
            let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
            let q = ch
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("passive declare of {queue}: {e}"))?;
            if delete {
                ch.queue_delete(queue.into(), QueueDeleteOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _ = conn.close(200, "checked".into()).await;
            Ok(q.message_count())
        })
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        // SIGKILL to our own child's process group (the script, beam.smp and
        // erl_child_setup); `--` so the negative id is read as a group.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}
