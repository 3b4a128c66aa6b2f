import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program (an argv, never through a shell) in its own process group, captures stdout and
/// stderr up to a cap, and kills the whole group on timeout or cancellation.
public enum ProcessRunner {
    /// How a program ended.
    public struct Outcome: Sendable {
        public var exitCode: Int32
        /// Set when a signal ended it.
        public var signal: Int32?
        public var stdout: Data
        public var stderr: Data
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool
        public var timedOut: Bool
    }

    /// The default cap of captured output per stream (1 MiB).
    public static let defaultCap = 1 << 20

    /// Runs `argv` in `directory` with `environment`, waiting at most `timeout` seconds.
    ///
    /// Blocking waits run on a dedicated thread, never on Swift's cooperative pool.
    public static func run(argv: [String], directory: String, environment: [String: String],
                           timeout: Double?, cap: Int = defaultCap) async throws -> Outcome {
        guard let program = argv.first else {
            throw RunnerError.usage("shell.empty", "the shell step has no program; name one first, e.g. [\"./script.sh\"]")
        }
        let executable = resolve(program, directory: directory, path: environment["PATH"])
        guard let executable, FileManager.default.isExecutableFile(atPath: executable) else {
            throw RunnerError("shell.not_found",
                "cannot run `\(program)`: no executable file \(program.contains("/") ? "at \(((directory as NSString).appendingPathComponent(program) as NSString).standardizingPath)" : "named so on PATH"); check the path (relative to the job's folder \(directory)) and that the file is executable (chmod +x)")
        }
        let box = ChildBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, Error>) in
                let thread = Thread {
                    do {
                        continuation.resume(returning: try spawnAndWait(executable: executable, argv: argv, directory: directory,
                                                                        environment: environment, timeout: timeout, cap: cap, box: box))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.start()
            }
        } onCancel: {
            box.kill()
        }
    }

    static func resolve(_ program: String, directory: String, path: String?) -> String? {
        if program.hasPrefix("/") { return program }
        if program.contains("/") { return ((directory as NSString).appendingPathComponent(program) as NSString).standardizingPath }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The child's pid, shared with the cancellation handler.
    final class ChildBox: @unchecked Sendable {  // guarded by `lock`
        private let lock = NSLock()
        private var pid: pid_t = 0
        private var cancelled = false

        func set(_ pid: pid_t) -> Bool {
            lock.lock(); defer { lock.unlock() }
            self.pid = pid
            return !cancelled
        }

        func kill() {
            lock.lock(); defer { lock.unlock() }
            cancelled = true
            if pid > 0 { _ = Glibc.kill(-pid, SIGKILL) }
        }
    }

    static func spawnAndWait(executable: String, argv: [String], directory: String, environment: [String: String],
                             timeout: Double?, cap: Int, box: ChildBox) throws -> Outcome {
        // Close-on-exec pipes, and a child that closes everything above stderr as it starts: a
        // program inherits none of the worker's descriptors (its database, its sockets, the pipes
        // of a step spawned at the same moment, which would otherwise keep that step's output
        // open, and the step running, until this program ended).
        let outPipe = try closeOnExecPipe()
        let errPipe: (read: Int32, write: Int32)
        do { errPipe = try closeOnExecPipe() } catch { close(outPipe.read); close(outPipe.write); throw error }
        let pid: pid_t
        do {
            pid = try spawn(executable: executable, argv: argv, environment: environment, directory: directory,
                            stdin: .null, stdout: .descriptor(outPipe.write), stderr: .descriptor(errPipe.write))
        } catch {
            for fd in [outPipe.read, outPipe.write, errPipe.read, errPipe.write] { close(fd) }
            throw error
        }
        close(outPipe.write)
        close(errPipe.write)
        if !box.set(pid) { _ = kill(-pid, SIGKILL) }

        // Drain both pipes on their own threads so a chatty child never blocks on a full pipe.
        let out = PipeReader(fd: outPipe.read, cap: cap)
        let err = PipeReader(fd: errPipe.read, cap: cap)
        out.start()
        err.start()

        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var status: Int32 = 0
        var timedOut = false
        var killedAt: Date?
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0, errno != EINTR { break }
            if let deadline, Date() >= deadline, killedAt == nil {
                timedOut = true
                _ = kill(-pid, SIGTERM)
                killedAt = Date()
            }
            if let killedAt, Date().timeIntervalSince(killedAt) > 5 { _ = kill(-pid, SIGKILL) }
            usleep(10_000)
        }
        // The group may still hold the pipes open (background children): end them too.
        if timedOut { _ = kill(-pid, SIGKILL) }
        out.wait()
        err.wait()
        let exited = (status & 0x7f) == 0
        return Outcome(exitCode: exited ? (status >> 8) & 0xff : -1, signal: exited ? nil : status & 0x7f,
                       stdout: out.data, stderr: err.data, stdoutTruncated: out.truncated,
                       stderrTruncated: err.truncated, timedOut: timedOut)
    }

    /// What a child's standard stream (0, 1 or 2) is.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// The parent's own.
        case inherit
        /// This descriptor of the parent (the write end of a pipe, say).
        case descriptor(Int32)
        /// This file, appended to and created when missing.
        case file(String)
    }

    /// Starts `argv` (its first element is the program's name as it sees it) from `executable`
    /// (a path, or a name looked up on PATH), in `directory`, leading a process group of its own,
    /// with every signal at its default and none blocked. The child gets its three standard streams
    /// and no other descriptor of this process, whenever it was opened and whatever its flags.
    public static func spawn(executable: String, argv: [String], environment: [String: String], directory: String?,
                             stdin: Stream, stdout: Stream, stderr: Stream) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var inherited: [Int32] = []
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path): posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
                inherited.append(fd)
            }
        }
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, 3)
        } else {
            // Before glibc 2.34: descriptors opened without close-on-exec may be inherited.
            for fd in Set(inherited) where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
        // glibc ≥ 2.29 has addchdir_np but Swift's Glibc module does not export it: look it up.
        var spawnPath = executable
        var spawnArgs = argv
        if let directory {
            if let addchdir = Self.addChdir {
                _ = addchdir(&actions, directory)
            } else {
                spawnPath = "/usr/bin/env"
                spawnArgs = ["env", "-C", directory, "--", executable] + argv.dropFirst()
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A process group of its own, so a timeout kills the program and everything it started.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let cArgs = spawnArgs.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = cArgs.withUnsafeBufferPointer { args in
            cEnv.withUnsafeBufferPointer { env in
                let argv = UnsafeMutablePointer(mutating: args.baseAddress!), envp = UnsafeMutablePointer(mutating: env.baseAddress!)
                return spawnPath.contains("/") ? posix_spawn(&pid, spawnPath, &actions, &attributes, argv, envp)
                                               : posix_spawnp(&pid, spawnPath, &actions, &attributes, argv, envp)
            }
        }
        guard rc == 0 else {
            throw RunnerError("shell.spawn", "cannot start `\(argv.first ?? executable)`: \(String(cString: strerror(rc))); check that it is an executable program with a valid #! line")
        }
        return pid
    }

    /// A pipe whose two ends are close-on-exec.
    public static func closeOnExecPipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard closeOnExecPipe(&fds) == 0 else {
            throw RunnerError("shell.pipe", "cannot create pipes: \(String(cString: strerror(errno))); the system may be out of file descriptors")
        }
        return (fds[0], fds[1])
    }

    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static let addChdir: AddChdir? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32

    /// `pipe2(fds, O_CLOEXEC)`: glibc has it, Swift's Glibc module does not export it (it is a
    /// _GNU_SOURCE function). Without it, `pipe` then `FD_CLOEXEC` on each end.
    static func closeOnExecPipe(_ fds: inout [Int32]) -> Int32 {
        if let pipe2 = Self.pipe2 { return fds.withUnsafeMutableBufferPointer { pipe2($0.baseAddress!, O_CLOEXEC) } }
        guard pipe(&fds) == 0 else { return -1 }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return 0
    }

    static let pipe2: Pipe2? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "pipe2") else { return nil }
        return unsafeBitCast(symbol, to: Pipe2.self)
    }()

    /// glibc ≥ 2.34; not exported by Swift's Glibc module either.
    static let addCloseFrom: AddCloseFrom? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Reads a pipe to its end on a thread, keeping at most `cap` bytes.
    final class PipeReader: @unchecked Sendable {  // fields written by the reader thread before `done` is signalled
        let fd: Int32
        let cap: Int
        var data = Data()
        var truncated = false
        private let done = DispatchSemaphore(value: 0)

        init(fd: Int32, cap: Int) {
            self.fd = fd
            self.cap = cap
        }

        func start() {
            let thread = Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n < 0, errno == EINTR { continue }
                    if n <= 0 { break }
                    let room = cap - data.count
                    if room > 0 { data.append(contentsOf: buffer[0..<min(n, room)]) }
                    if n > room { truncated = true }
                }
                close(fd)
                done.signal()
            }
            thread.start()
        }

        func wait() { done.wait() }
    }
}
