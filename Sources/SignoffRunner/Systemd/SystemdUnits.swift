import Foundation

/// The systemd units of an installation: run and import on timers (import also on a path unit
/// watching the Maildir), a long-running worker, and one enqueue timer per scheduled job.
///
/// The files in the checkout's `systemd/` folder are this generator's output with the defaults;
/// `signoff systemd [--install DIR]` writes them for the actual binary, folders and jobs.
public struct SystemdUnits: Sendable {
    /// Where things are on the host.
    public struct Layout: Sendable, Hashable {
        /// The `signoff` binary.
        public var binary: String
        /// `signoff.yaml`.
        public var config: String
        /// The state directory (working directory; the only writable path).
        public var stateDirectory: String
        /// The Maildir replies are delivered to.
        public var maildrop: String
        /// The response-file inbox.
        public var inbox: String
        /// Extra writable paths (e.g. a Maildir outside the state directory).
        public var extraWritablePaths: [String]
        /// The user and group the services run as.
        public var user: String
        /// Where credential files live (`smtp`, `llm`).
        public var credentialsDirectory: String

        public init(binary: String = "/usr/local/bin/signoff", config: String = "/etc/signoff/signoff.yaml",
                    stateDirectory: String = "/var/lib/signoff", maildrop: String = "/var/lib/signoff/var/maildrop",
                    inbox: String = "/var/lib/signoff/var/inbox", extraWritablePaths: [String] = [],
                    user: String = "signoff", credentialsDirectory: String = "/etc/signoff/credentials") {
            self.binary = binary
            self.config = config
            self.stateDirectory = stateDirectory
            self.maildrop = maildrop
            self.inbox = inbox
            self.extraWritablePaths = extraWritablePaths
            self.user = user
            self.credentialsDirectory = credentialsDirectory
        }
    }

    /// One unit file.
    public struct Unit: Sendable, Hashable {
        /// The file name, e.g. `signoff-run.service`.
        public var name: String
        /// The file's text.
        public var text: String
    }

    public var layout: Layout

    public init(layout: Layout = Layout()) { self.layout = layout }

    /// The fixed units (run, import, worker, enqueue template).
    public func baseUnits() -> [Unit] {
        [
            service("signoff-run.service", "Signoff: run queued workflow runs, then send mail", type: "oneshot",
                    command: "run", extra: ["TimeoutStartSec=1h"]),
            timer("signoff-run.timer", "Signoff: run queued workflow runs every minute", calendar: "minutely",
                  unit: "signoff-run.service", accuracy: "5s"),
            service("signoff-import.service", "Signoff: import replies from the Maildir and the inbox", type: "oneshot",
                    command: "import", extra: ["TimeoutStartSec=15min"],
                    unitExtra: ["# Answers queue their runs: run them now instead of at the next tick.",
                                "OnSuccess=signoff-run.service"]),
            Unit(name: "signoff-import.path", text: """
                [Unit]
                Description=Signoff: import replies as soon as mail lands in the Maildir or a file in the inbox
                Documentation=\(Self.documentation)

                [Path]
                PathChanged=\(layout.maildrop)/new
                DirectoryNotEmpty=\(layout.maildrop)/new
                DirectoryNotEmpty=\(layout.inbox)/new
                Unit=signoff-import.service

                [Install]
                WantedBy=paths.target

                """),
            timer("signoff-import.timer", "Signoff: import replies every five minutes (fallback for the path unit)",
                  calendar: "*:0/5", unit: "signoff-import.service", accuracy: "30s"),
            service("signoff-worker.service", "Signoff: run, import and send continuously", type: "exec",
                    command: "worker",
                    extra: ["Restart=on-failure", "RestartSec=10s",
                            "# SIGTERM: stop taking work, finish the superstep in flight, exit.",
                            "KillSignal=SIGTERM", "TimeoutStopSec=5min"],
                    unitExtra: ["# One mode at a time: the worker replaces the timers and the path unit.",
                                "Conflicts=signoff-run.timer signoff-import.timer signoff-import.path"],
                    install: "multi-user.target"),
            service("signoff-enqueue@.service", "Signoff: enqueue a run of job %i", type: "oneshot",
                    command: "enqueue %i", extra: [], unitExtra: ["OnSuccess=signoff-run.service"]),
        ]
    }

    /// One timer per job with a `schedule:`.
    public func jobTimers(_ jobs: [JobDefinition]) -> [Unit] {
        jobs.compactMap { job in
            guard let schedule = job.schedule else { return nil }
            return Unit(name: "signoff-enqueue@\(Self.escape(job.name)).timer", text: """
                [Unit]
                Description=Signoff: enqueue job \(job.name) on its schedule
                Documentation=\(Self.documentation)

                [Timer]
                OnCalendar=\(schedule)
                Persistent=true
                Unit=signoff-enqueue@\(Self.escape(job.name)).service

                [Install]
                WantedBy=timers.target

                """)
        }
    }

    static let documentation = "https://github.com/signoff/signoff/blob/main/docs/cli.md"

    /// systemd's instance-name escaping (`systemd-escape`): `-` → `\x2d`, `/` → `-`, and
    /// everything but `[A-Za-z0-9:_.]` hex-escaped.
    public static func escape(_ s: String) -> String {
        var out = ""
        for (i, byte) in s.utf8.enumerated() {
            let c = Character(UnicodeScalar(byte))
            if c == "/" { out += "-" } else if (c.isASCII && (c.isLetter || c.isNumber)) || c == ":" || c == "_" || (c == "." && i > 0) {
                out.append(c)
            } else {
                out += String(format: "\\x%02x", byte)
            }
        }
        return out
    }

    func timer(_ name: String, _ description: String, calendar: String, unit: String, accuracy: String) -> Unit {
        Unit(name: name, text: """
            [Unit]
            Description=\(description)
            Documentation=\(Self.documentation)

            [Timer]
            OnCalendar=\(calendar)
            AccuracySec=\(accuracy)
            Persistent=true
            Unit=\(unit)

            [Install]
            WantedBy=timers.target

            """)
    }

    func service(_ name: String, _ description: String, type: String, command: String, extra: [String],
                 unitExtra: [String] = [], install: String? = nil) -> Unit {
        var writable = [layout.stateDirectory] + layout.extraWritablePaths
        for p in [layout.maildrop, layout.inbox] where !writable.contains(where: { p.hasPrefix($0 + "/") || p == $0 }) {
            writable.append(p)
        }
        let stateName = layout.stateDirectory.hasPrefix("/var/lib/")
            ? String(layout.stateDirectory.dropFirst("/var/lib/".count)) : nil
        var lines: [String] = []
        lines += ["[Unit]", "Description=\(description)", "Documentation=\(Self.documentation)",
                  "After=network-online.target postgresql.service", "Wants=network-online.target"]
        lines += unitExtra
        lines += ["", "[Service]", "Type=\(type)", "ExecStart=\(layout.binary) \(command)"]
        lines += extra
        lines += ["User=\(layout.user)", "Group=\(layout.user)",
                  "WorkingDirectory=\(layout.stateDirectory)",
                  "Environment=SIGNOFF_CONFIG=\(layout.config)",
                  "# Secrets arrive as files in $CREDENTIALS_DIRECTORY; signoff.yaml names them as",
                  "# password_file: ${CREDENTIALS_DIRECTORY}/smtp and api_key_file: ${CREDENTIALS_DIRECTORY}/llm.",
                  "# SetCredential= (an empty line) is the fallback when a file is absent: no SMTP login, no LLM key.",
                  "LoadCredential=smtp:\(layout.credentialsDirectory)/smtp", "SetCredential=smtp:\\n",
                  "LoadCredential=llm:\(layout.credentialsDirectory)/llm", "SetCredential=llm:\\n",
                  "",
                  "# Sandbox: read-only system except the state folder, no home, private /tmp and devices,",
                  "# no privileges or capabilities, only local and IP sockets, the system-service syscalls."]
        if let stateName { lines += ["StateDirectory=\(stateName)", "StateDirectoryMode=0750"] }
        lines += ["ProtectSystem=strict"]
        lines += writable.map { "ReadWritePaths=\($0)" }
        lines += Self.hardening
        if let install { lines += ["", "[Install]", "WantedBy=\(install)"] }
        return Unit(name: name, text: lines.joined(separator: "\n") + "\n")
    }

    static let hardening = [
        "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "PrivateUsers=yes", "NoNewPrivileges=yes",
        "CapabilityBoundingSet=", "AmbientCapabilities=", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
        "ProtectProc=invisible", "ProcSubset=pid", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes", "RemoveIPC=yes", "KeyringMode=private", "DevicePolicy=closed",
        "SystemCallArchitectures=native", "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources", "SystemCallErrorNumber=EPERM", "UMask=0027",
    ]

    /// Writes `units` into `directory` (created if needed); returns the paths written.
    public static func write(_ units: [Unit], to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try units.map { unit in
            let path = (directory as NSString).appendingPathComponent(unit.name)
            try unit.text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }
}
