import Foundation
import Testing
import SignoffTestSupport
@testable import SignoffRunner

struct CLITests {
    @Test func helpDocumentsTheExitCodes() throws {
        let r = try TestSupport.run(try TestSupport.signoffBinary(), ["--help"])
        #expect(r.status == 0)
        for line in ["0  ok", "1  failure", "2  usage", "3  not found", "4  conflict"] {
            #expect(r.stdout.contains(line), "help lacks `\(line)`")
        }
    }

    #if os(Linux)
    /// The shipped binary allocates with jemalloc (Package.swift, ARCHITECTURE.md "Allocator"):
    /// jemalloc honours `MALLOC_CONF` and prints its statistics on exit; glibc ignores it.
    @Test func theBinaryAllocatesWithJemalloc() throws {
        var env = ProcessInfo.processInfo.environment
        env["MALLOC_CONF"] = "stats_print:true"
        let r = try TestSupport.run(try TestSupport.signoffBinary(), ["--help"], environment: env)
        #expect(r.status == 0)
        #expect(r.stderr.contains("Begin jemalloc statistics"), "signoff does not allocate with jemalloc")
    }
    #endif

    @Test func unknownOptionIsAUsageErrorWithExitTwo() throws {
        let r = try TestSupport.run(try TestSupport.signoffBinary(), ["history", "--colour"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--colour"))
    }

    @Test func missingConfigurationIsNotFoundAndSaysToRunInit() throws {
        let dir = try TestSupport.scratch()
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SIGNOFF_CONFIG")
        let r = try TestSupport.run(try TestSupport.signoffBinary(), ["history"], environment: env, currentDirectory: dir)
        #expect(r.status == 3)
        #expect(r.stderr.contains("signoff init"))
    }

    /// A database nobody listens on: one message naming it (password left out), saying once
    /// what to check, and a non-zero exit.
    @Test func anUnreachableDatabaseSaysWhatToCheckOnce() throws {
        let binary = try TestSupport.signoffBinary()
        let dir = try TestSupport.scratch()
        #expect(try TestSupport.run(binary, ["init", dir]).status == 0)
        // A loopback port nothing listens on: bound, then released.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try #require(bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0)
            }
        }
        close(probe)
        let url = "postgresql://signoff:s3cret@127.0.0.1:\(UInt16(bigEndian: address.sin_port))/signoff"
        let r = try TestSupport.run(binary, ["history", "--database", url], currentDirectory: dir)
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot open the database") && r.stderr.contains("127.0.0.1"), "\(r.stderr)")
        #expect(!r.stderr.contains("s3cret"), "the password is shown: \(r.stderr)")
        #expect(r.stderr.components(separatedBy: "is the server running?").count == 2, "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "`database:` in signoff.yaml").count == 2, "the fix is given more than once: \(r.stderr)")
    }

    /// On a full disk `signoff import` says the disk is full and where, writes nothing, and leaves
    /// the reply in new/; once there is room, the same reply is imported and the run finishes.
    /// (A small tmpfs in a mount namespace of the test's own: `unshare -m`, as root or with user
    /// namespaces.)
    @Test func aFullDiskIsNamedAndTheReplyWaitsForRoom() throws {
        let binary = try TestSupport.signoffBinary()
        let dir = try TestSupport.scratch("signoff-full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = #"""
            set -e
            if [ "$(id -u)" != 0 ]; then echo "needs root or user namespaces"; exit 9; fi
            mount -t tmpfs -o size=8m tmpfs "$DIR"
            cd "$DIR" && "$SIGNOFF" init p >/dev/null && cd p
            "$SIGNOFF" enqueue release-notes --input version=9.9 >/dev/null
            "$SIGNOFF" run >/dev/null
            mail=$(grep -l '^Reply-To: approvals+' var/outbox/*.eml | head -n 1)
            to=$(grep -m1 '^Reply-To:' "$mail" | sed 's/^Reply-To: *//' | tr -d '\r')
            id=$(grep -m1 '^Message-ID:' "$mail" | sed 's/^Message-ID: *//' | tr -d '\r')
            printf 'From: <editor@example.org>\r\nTo: %s\r\nSubject: Re: notes\r\nMessage-ID: <full-1@example.org>\r\nIn-Reply-To: %s\r\n\r\nAPPROVE\r\n' "$to" "$id" > var/maildrop/new/reply.eml
            dd if=/dev/zero of="$DIR/filler" bs=64k 2>/dev/null || true
            set +e
            "$SIGNOFF" import 2>&1; echo "first-import-exit=$?"
            echo "in-new=$(ls var/maildrop/new)"
            rm "$DIR/filler"
            "$SIGNOFF" import 2>&1; echo "second-import-exit=$?"
            "$SIGNOFF" run >/dev/null; "$SIGNOFF" history --json
            """#
        var env = ProcessInfo.processInfo.environment
        env["DIR"] = dir
        env["SIGNOFF"] = binary
        env.removeValue(forKey: "SIGNOFF_CONFIG")
        env.removeValue(forKey: "SIGNOFF_DATABASE")
        let namespace = getuid() == 0 ? ["-m"] : ["-r", "-m"]
        let r = try TestSupport.run("/usr/bin/unshare", namespace + ["/bin/sh", "-c", script], environment: env)
        try #require(r.status == 0, "the scenario did not run: \(r.stdout)\(r.stderr)")
        let out = r.stdout
        #expect(out.contains("first-import-exit=1"), "\(out)")
        #expect(out.contains("is full") && out.contains("\(dir)/p/var") && out.contains("free some space there"), "\(out)")
        #expect(!out.contains("the server is running"), "\(out)")
        #expect(out.contains("in-new=reply.eml"), "the reply did not wait in new/: \(out)")
        #expect(out.contains("import: 1 applied") && out.contains("second-import-exit=0"), "\(out)")
        #expect(out.contains("\"status\" : \"succeeded\"") || out.contains("\"status\":\"succeeded\""), "\(out)")
    }

    @Test func initRefusesToOverwriteAnInstallation() throws {
        let binary = try TestSupport.signoffBinary()
        let dir = try TestSupport.scratch()
        #expect(try TestSupport.run(binary, ["init", dir]).status == 0)
        for folder in ["var/maildrop/new", "var/maildrop/cur", "var/maildrop/tmp", "var/inbox/new", "var/inbox/tmp",
                       "var/archive", "var/quarantine", "var/outbox"] {
            var isDir: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: dir + "/" + folder, isDirectory: &isDir) && isDir.boolValue, "\(folder)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/var/signoff.sqlite"))
        let again = try TestSupport.run(binary, ["init", dir])
        #expect(again.status == 4)
        #expect(again.stderr.contains("--force"))
    }

    @Test func workerStopsOnSIGTERMAndExitsZero() async throws {
        let binary = try TestSupport.signoffBinary()
        let dir = try TestSupport.scratch()
        #expect(try TestSupport.run(binary, ["init", dir]).status == 0)
        let process = try Subprocess(binary, ["worker", "--interval", "200ms"], directory: dir, stdout: .null, stderr: .null)
        defer { process.terminate(SIGKILL) }
        try await Task.sleep(nanoseconds: 1_500_000_000)
        #expect(process.isRunning, "the worker exited on its own")
        process.terminate()  // SIGTERM
        let status = try await process.exit(timeout: .seconds(10))
        #expect(status != nil, "the worker ignored SIGTERM")
        if let status { #expect(status == 0) }
    }
}

extension CLITests {
    @Test func initWritesTheShippedExampleJobAndScripts() throws {
        let dir = try TestSupport.scratch()
        #expect(try TestSupport.run(try TestSupport.signoffBinary(), ["init", dir]).status == 0)
        for file in ["release-notes.yaml", "scripts/draft.sh", "scripts/publish.sh"] {
            let written = try String(contentsOfFile: dir + "/jobs/" + file, encoding: .utf8)
            let shipped = try String(contentsOfFile: TestSupport.packageRoot + "/jobs/" + file, encoding: .utf8)
            #expect(written == shipped, "jobs/\(file) written by init differs from the checkout's")
        }
    }
}
