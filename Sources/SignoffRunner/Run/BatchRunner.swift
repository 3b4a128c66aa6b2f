import Foundation
import Logging
import SignoffEngine
import SignoffMail
import SignoffStore

/// What one `signoff run` pass did.
public struct RunPassReport: Sendable, Hashable, Codable {
    public var claimed = 0
    public var succeeded = 0
    public var rejected = 0
    public var failed = 0
    public var waiting = 0
    /// Runs another runner took over while this one worked on them.
    public var leaseLost = 0
    /// Requests that expired or were reminded in this pass.
    public var timersFired = 0
    public var mailSent = 0
    public var mailDeferred = 0
    public var mailFailed = 0
    /// Scheduled reminders withdrawn instead of sent (no longer needed); not failures.
    public var mailWithdrawn = 0
    public init() {}
}

/// The queue loop: claims runnable runs, executes them with the engine until they wait for people
/// or end, and records every outcome in the store atomically.
public struct BatchRunner: Sendable {
    public var environment: RunnerEnvironment

    public init(environment: RunnerEnvironment) { self.environment = environment }

    var store: any RunStore { environment.store }
    var logger: Logger { environment.logger }

    /// Runs what is runnable (at most `maxRuns`, `concurrency` at a time), fires due request timers,
    /// then sends due mail. `progress` is told about each finished run.
    public func runPass(concurrency: Int = 1, maxRuns: Int? = nil,
                        progress: (@Sendable (String) -> Void)? = nil) async throws -> RunPassReport {
        var report = RunPassReport()
        report.timersFired = try await RequestTimers(environment: environment).fire()
        var remaining = maxRuns ?? Int.max
        while remaining > 0 {
            if Task.isCancelled { break }
            let claimed = try await store.claimRuns(owner: environment.owner, limit: min(concurrency, remaining),
                                                    leaseSeconds: environment.leaseSeconds, now: environment.now())
            if claimed.isEmpty { break }
            remaining -= claimed.count
            report.claimed += claimed.count
            let outcomes = await withTaskGroup(of: (String, RunStatusOutcome).self) { group in
                for run in claimed {
                    group.addTask { (run.run.id, await self.execute(run)) }
                }
                var out: [(String, RunStatusOutcome)] = []
                for await o in group { out.append(o) }
                return out
            }
            for (id, outcome) in outcomes {
                switch outcome {
                case .succeeded: report.succeeded += 1
                case .rejected: report.rejected += 1
                case .failed: report.failed += 1
                case .waiting: report.waiting += 1
                case .leaseLost: report.leaseLost += 1
                }
                progress?("run \(id): \(outcome.rawValue)")
            }
        }
        let mail = try await sendMail()
        report.mailSent = mail.sent
        report.mailDeferred = mail.deferred
        report.mailFailed = mail.failed
        report.mailWithdrawn = mail.withdrawn
        return report
    }

    /// Sends due outbox mail once.
    public func sendMail() async throws -> OutboxSender.PassReport {
        let composer = try? environment.composer()
        let sender = OutboxSender(store: store, transport: try environment.transport(),
                                  configuration: .init(defaultSender: composer?.from ?? EmailAddress("signoff@localhost"),
                                                       noticeComposer: composer),
                                  logger: logger)
        return try await sender.sendDue(now: environment.now())
    }

    enum RunStatusOutcome: String, Sendable { case succeeded, rejected, failed, waiting, leaseLost = "lease lost" }

    /// Executes one claimed run to its next resting point.
    func execute(_ claimed: ClaimedRun) async -> RunStatusOutcome {
        let run = claimed.run
        var runLogger = logger
        runLogger[metadataKey: "run.id"] = "\(run.id)"
        runLogger[metadataKey: "job.name"] = "\(run.job)"
        let log = runLogger
        do {
            return try await withHeartbeat(claimed.lease) { try await self.advance(claimed, log: log) }
        } catch let error as StoreError where error.code == .leaseLost {
            log.warning("lost the lease; another runner has the run", metadata: ["error": "\(error.message)"])
            return .leaseLost
        } catch {
            let message = (error as? RunnerError)?.message ?? "\(error)"
            log.error("run failed", metadata: ["error": "\(message)"])
            do {
                try await store.finish(RunCompletion(lease: claimed.lease, status: .failed, error: message), now: environment.now())
            } catch let e as StoreError where e.code == .leaseLost {
                return .leaseLost
            } catch {
                log.error("cannot record the failure", metadata: ["error": "\(error)"])
            }
            return .failed
        }
    }

    /// Runs `body` while a child task renews the lease every third of its length.
    func withHeartbeat(_ lease: Lease, _ body: @escaping @Sendable () async throws -> RunStatusOutcome) async throws -> RunStatusOutcome {
        let store = self.store
        let environment = self.environment
        return try await withThrowingTaskGroup(of: RunStatusOutcome?.self) { group in
            group.addTask {
                var current = lease
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(environment.leaseSeconds / 3 * 1e9))
                    if Task.isCancelled { break }
                    if let renewed = try? await store.heartbeat(current, until: environment.now().addingTimeInterval(environment.leaseSeconds)) {
                        current = renewed
                    }
                }
                return nil
            }
            group.addTask { try await body() }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let outcome = next { return outcome }
            }
            throw CancellationError()
        }
    }

    /// Builds the run's workflow and runs it from its start or its checkpoint to the next resting point.
    func advance(_ claimed: ClaimedRun, log: Logger) async throws -> RunStatusOutcome {
        let run = claimed.run
        do {
            let job = try environment.catalog.job(named: run.job)
            var services = environment.services
            services.currentRun = RunInfo(id: run.id, job: job.name, attempt: run.attempt, requestedBy: run.requestedBy,
                                          startedAt: run.startedAt ?? environment.now())
            let workflow = try JobCompiler.compile(job, services: services)
            // A checkpoint after every superstep, fenced by the lease.
            let options = RunOptions(runID: run.id,
                                     checkpointStorage: StoreCheckpointStorage(store: store, lease: claimed.lease, clock: environment.now))
            let result: RunResult
            if let stored = claimed.checkpoint {
                let checkpoint: Checkpoint
                do {
                    checkpoint = try Checkpoint.decode(from: stored.data)
                } catch {
                    throw RunnerError("run.checkpoint", "run \(run.id): its checkpoint cannot be read (\(error)); `signoff rerun \(run.id)` starts it again")
                }
                // A checkpoint saved after the answers were handed over (a crash before the pause or
                // finish recorded them) no longer waits for them: hand over only what it waits for.
                let waitingFor = Set(checkpoint.pendingRequests.map(\.id))
                let answers = claimed.answers.filter { waitingFor.contains($0.key) }.mapValues { RequestResponse.json($0) }
                do {
                    result = try await workflow.resume(from: checkpoint, responses: answers, options: options)
                } catch let error as WorkflowError {
                    throw RunnerError("run.resume", "run \(run.id) cannot resume: \(error.message); if the job file changed since the run paused, restore the old file or `signoff rerun \(run.id)`")
                }
            } else {
                let state = try initialState(run, job: job)
                result = try await workflow.run(state, options: options)
            }
            return try await record(result, claimed: claimed, job: job, log: log)
        }
    }

    /// The flow state a run starts with: the job's defaults overlaid with the run's input.
    func initialState(_ run: RunRecord, job: JobDefinition) throws -> FlowState {
        var input = job.input
        if !run.input.isEmpty, let value = JobValue.parse(run.input) {
            guard case .object(let given) = value else {
                throw RunnerError.usage("run.input", "run \(run.id) has an input that is not a JSON object; enqueue it again with --input key=value")
            }
            input.merge(given) { _, new in new }
        }
        return FlowState(run: RunInfo(id: run.id, job: job.name, attempt: run.attempt, requestedBy: run.requestedBy,
                                      startedAt: run.startedAt ?? environment.now()),
                         input: input)
    }

    /// Stores what the engine reported: a pause with its requests and mail, or the end of the run.
    func record(_ result: RunResult, claimed: ClaimedRun, job: JobDefinition, log: Logger) async throws -> RunStatusOutcome {
        let now = environment.now()
        let delivered = Array(claimed.answers.keys)
        switch result.status {
        case .waitingForInput:
            let checkpoint = NewCheckpoint(id: result.checkpoint.id, superstep: result.checkpoint.superstep,
                                           parentID: result.checkpoint.parentID, data: try result.checkpoint.encoded())
            var requests: [NewRequest] = []
            var mail: [NewMail] = []
            let known = Set(try await store.requests(runID: claimed.run.id).map(\.id))
            for pending in result.pendingRequests where !known.contains(pending.id) {
                let (request, requestMail) = try RequestMail(environment: environment)
                    .make(pending, run: claimed.run, job: job, now: now)
                requests.append(request)
                mail += requestMail
            }
            _ = try await store.pause(claimed.lease, checkpoint: checkpoint, requests: requests, mail: mail,
                                      delivered: delivered, now: now)
            log.info("waiting for people", metadata: ["requests": "\(result.pendingRequests.count)"])
            return .waiting
        case .idle:
            let states = result.outputs(as: FlowState.self)
            let final = states.isEmpty ? nil : FlowState.merge(states)
            let output = RunOutput(state: final)
            let data = try JSONEncoder.sorted.encode(output)
            if let rejectedBy = final?.rejectedBy {
                let r = final?.results[rejectedBy]
                let message = "step \(rejectedBy) was rejected by \(r?.by ?? "a reviewer")\(r?.reason.map { ": \($0)" } ?? "")"
                try await store.finish(RunCompletion(lease: claimed.lease, status: .rejected, output: data, error: message), now: now)
                log.info("rejected", metadata: ["step": "\(rejectedBy)"])
                return .rejected
            }
            try await store.finish(RunCompletion(lease: claimed.lease, status: .succeeded, output: data), now: now)
            log.info("succeeded")
            return .succeeded
        case .failed, .cancelled:
            var message = result.error?.message ?? "the workflow stopped"
            // The engine wraps a step's own error; keep the step's message, which says what to do.
            if let range = message.range(of: "threw: ") { message = String(message[range.upperBound...]) }
            try await store.finish(RunCompletion(lease: claimed.lease, status: .failed, error: message,
                                                 mail: failureMail(job: job, run: claimed.run, message: message)), now: now)
            log.error("failed", metadata: ["error": "\(message)"])
            return .failed
        default:
            try await store.finish(RunCompletion(lease: claimed.lease, status: .failed, error: "the engine stopped in state \(result.status.rawValue)"), now: now)
            return .failed
        }
    }

    /// A notice to the job's owner that a run failed (none when the job has no owner).
    func failureMail(job: JobDefinition, run: RunRecord, message: String) -> [NewMail] {
        guard let owner = job.owner, let composer = try? environment.composer() else { return [] }
        let context = MailTemplateContext(
            job: .init(name: job.name, description: job.description),
            run: .init(id: run.id, attempt: run.attempt, owner: owner), stepID: "",
            request: .init(id: run.id, title: "Run \(run.id) of \(job.name) failed", body: message),
            reviewer: EmailAddress(owner), failure: .init(recipient: owner, kind: "run", error: message))
        guard let mail = try? composer.compose(.failure, context: context, to: EmailAddress(owner)) else { return [] }
        return [NewMail(messageID: mail.messageID, kind: .failure, recipient: owner, raw: Data(mail.rfc5322()), runID: run.id)]
    }
}

/// The output stored with a finished run: every step's result.
public struct RunOutput: Codable, Sendable, Hashable {
    public var steps: [String: StepResult]
    public var rejectedBy: String?

    init(state: FlowState?) {
        steps = state?.results ?? [:]
        rejectedBy = state?.rejectedBy
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }
}
