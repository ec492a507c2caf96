//! A network of its own for real `credence run` processes: one network
//! namespace per host, each joined by a veth pair to a bridge in a hub
//! namespace (the data network, where the faults are), and by a second
//! veth pair to the test's own namespace (a management link, never
//! faulted, over which the test reaches the host's HTTP API). Faults are applied on the hub's
//! side of a host's link: `tc netem` loss and delay, or the link cut.
//! Everything is removed when the lab drops. Needs root and iproute2.

use std::process::Command;

/// A lab of `hosts` namespaces on one bridge.
pub struct NetLab {
    id: u32,
    subnet: u8,
    hosts: usize,
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?} failed with {status}");
}

fn run_quietly(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stderr(std::process::Stdio::null())
        .status();
}

impl NetLab {
    /// Whether this machine can build a lab (root and iproute2).
    pub fn available() -> bool {
        Command::new("ip")
            .args(["netns", "list"])
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::metadata("/proc/self").is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.uid() == 0
            })
    }

    /// Builds the lab.
    pub fn new(hosts: usize) -> NetLab {
        let id = std::process::id() % 100_000;
        let lab = NetLab {
            id,
            // A /24 of its own per test process, inside 10.0.0.0/8.
            subnet: 100 + (id % 100) as u8,
            hosts,
        };
        let hub = lab.hub();
        run(&["ip", "netns", "add", &hub]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "add", "br0", "type", "bridge",
        ]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "set", "br0", "up",
        ]);
        let (root, root_peer) = (format!("crR{id}"), format!("crQ{id}"));
        run(&[
            "ip", "link", "add", &root, "type", "veth", "peer", "name", &root_peer,
        ]);
        run(&["ip", "link", "set", &root_peer, "netns", &hub]);
        run(&[
            "ip", "netns", "exec", &hub, "ip", "link", "set", &root_peer, "master", "br0", "up",
        ]);
        let root_address = format!("10.{}.0.254/24", lab.subnet);
        run(&["ip", "addr", "add", &root_address, "dev", &root]);
        run(&["ip", "link", "set", &root, "up"]);
        for host in 0..hosts {
            let (ns, inside, outside) = (lab.namespace(host), lab.inside(host), lab.outside(host));
            run(&["ip", "netns", "add", &ns]);
            run(&[
                "ip", "link", "add", &inside, "type", "veth", "peer", "name", &outside,
            ]);
            run(&["ip", "link", "set", &inside, "netns", &ns]);
            run(&["ip", "link", "set", &outside, "netns", &hub]);
            run(&[
                "ip", "netns", "exec", &hub, "ip", "link", "set", &outside, "master", "br0", "up",
            ]);
            let address = format!("{}/24", lab.address(host));
            run(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &address, "dev", &inside,
            ]);
            run(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inside, "up",
            ]);
            run(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            let (manage, manage_peer) = (format!("crM{id}{host}"), format!("crN{id}{host}"));
            run(&[
                "ip",
                "link",
                "add",
                &manage,
                "type",
                "veth",
                "peer",
                "name",
                &manage_peer,
            ]);
            run(&["ip", "link", "set", &manage_peer, "netns", &ns]);
            let root_side = format!("10.{}.{host}.1/30", lab.subnet + 50);
            let host_side = format!("{}/30", lab.management(host));
            run(&["ip", "addr", "add", &root_side, "dev", &manage]);
            run(&["ip", "link", "set", &manage, "up"]);
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &host_side,
                "dev",
                &manage_peer,
            ]);
            run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "link",
                "set",
                &manage_peer,
                "up",
            ]);
        }
        lab
    }

    /// The address of `host` on its management link (its HTTP API).
    pub fn management(&self, host: usize) -> String {
        format!("10.{}.{host}.2", self.subnet + 50)
    }

    fn hub(&self) -> String {
        format!("cr{}hub", self.id)
    }

    /// The namespace of `host`.
    pub fn namespace(&self, host: usize) -> String {
        format!("cr{}h{host}", self.id)
    }

    fn inside(&self, host: usize) -> String {
        format!("crH{}{host}", self.id)
    }

    fn outside(&self, host: usize) -> String {
        format!("crB{}{host}", self.id)
    }

    /// The address of `host`.
    pub fn address(&self, host: usize) -> String {
        format!("10.{}.0.{}", self.subnet, host + 1)
    }

    /// Degrades `host`'s link both ways: 20% loss and 40 ± 20 ms of delay
    /// with `tc netem` where the kernel has it; where it does not (some
    /// sandboxed kernels lack `sch_netem`), a token bucket (`tbf`) of
    /// 128 kbit/s with a 100 ms queue, which delays what queues and drops
    /// what overflows. Returns which one was applied.
    pub fn degrade(&self, host: usize) -> &'static str {
        let netem = ["netem", "loss", "20%", "delay", "40ms", "20ms"];
        let tbf = ["tbf", "rate", "128kbit", "burst", "4kb", "latency", "100ms"];
        let mut used = "netem";
        for (ns, dev) in [
            (self.hub(), self.outside(host)),
            (self.namespace(host), self.inside(host)),
        ] {
            let base = [
                "ip", "netns", "exec", &ns, "tc", "qdisc", "replace", "dev", &dev, "root",
            ];
            let with_netem: Vec<&str> = base.iter().copied().chain(netem).collect();
            let ok = used == "netem"
                && Command::new(with_netem[0])
                    .args(&with_netem[1..])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if !ok {
                used = "tbf";
                let with_tbf: Vec<&str> = base.iter().copied().chain(tbf).collect();
                run(&with_tbf);
            }
        }
        used
    }

    /// Removes loss and delay from `host`'s link.
    pub fn clear(&self, host: usize) {
        for (ns, dev) in [
            (self.hub(), self.outside(host)),
            (self.namespace(host), self.inside(host)),
        ] {
            run_quietly(&[
                "ip", "netns", "exec", &ns, "tc", "qdisc", "del", "dev", &dev, "root",
            ]);
        }
    }

    /// Cuts `host` off (its link down at the bridge).
    pub fn cut(&self, host: usize) {
        let hub = self.hub();
        run(&[
            "ip",
            "netns",
            "exec",
            &hub,
            "ip",
            "link",
            "set",
            &self.outside(host),
            "down",
        ]);
    }

    /// Heals `host`'s link.
    pub fn heal(&self, host: usize) {
        let hub = self.hub();
        run(&[
            "ip",
            "netns",
            "exec",
            &hub,
            "ip",
            "link",
            "set",
            &self.outside(host),
            "up",
        ]);
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for host in 0..self.hosts {
            run_quietly(&["ip", "netns", "del", &self.namespace(host)]);
        }
        run_quietly(&["ip", "netns", "del", &self.hub()]);
        run_quietly(&["ip", "link", "del", &format!("crR{}", self.id)]);
        for host in 0..self.hosts {
            run_quietly(&["ip", "link", "del", &format!("crM{}{host}", self.id)]);
        }
    }
}
