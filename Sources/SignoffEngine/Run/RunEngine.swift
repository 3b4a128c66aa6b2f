import Foundation

/// A message waiting for the next superstep, with resolved types and indices.
enum InFlight: Sendable {
    /// `source` is -1 for the run's input.
    case message(source: Int, targetID: String?, value: any WorkflowPayload)
    case response(PendingRequest, executor: Int, data: any WorkflowPayload, response: any WorkflowPayload, handler: Int)
    case cancellation(PendingRequest, executor: Int, data: any WorkflowPayload, handler: Int)
}

/// The state and loop of one `run`/`resume` call. Owned by one task.
final class RunEngine: @unchecked Sendable {
    // @unchecked: the engine is created, driven and dropped by a single task; only its contexts
    // (each confined to one child task per superstep) cross task boundaries.

    let wf: Workflow
    let runID: String
    let sink: (@Sendable (WorkflowEvent) -> Void)?
    let storage: (any CheckpointStorage)?
    /// Set when the storage commits in groups: saves are handed over, not awaited one by one.
    let pipeline: CheckpointPipeline?
    let limit: Int

    let instances: [any Executor]
    let handlers: [ExecutorHandlers]
    let contexts: [WorkflowContext]
    let ledger: RequestLedger

    // Run state (what a checkpoint holds).
    var superstep = 0
    var inflight: [InFlight] = []
    var pending: [PendingRequest] = []
    var answered: [String] = []
    var shared: [String: Payload] = [:]
    var fanIn: [[[any WorkflowPayload]]]
    var outputs: [WorkflowOutput] = []
    /// The last checkpoint taken (handed to the storage): the parent of the next one.
    var lastCheckpoint: Checkpoint?
    /// The last checkpoint known durable (the restored one, or the last committed save).
    var lastDurable: Checkpoint?
    /// Set once a storage failure has been reported (`.failed` event), so it is reported once.
    var storageFailureReported = false
    var restoredStates: [String: ExecutorSnapshot] = [:]

    // This call.
    var callSupersteps = 0
    var callOutputs: [WorkflowOutput] = []
    var reemit: [PendingRequest] = []

    // Scratch reused across supersteps.
    var next: [InFlight] = []
    var inbox: [[Delivery]]
    var active: [Int] = []
    var handlerCache: [[ObjectIdentifier: Int]]

    init(workflow: Workflow, options: RunOptions, sink: (@Sendable (WorkflowEvent) -> Void)?) throws {
        wf = workflow
        let runID = options.runID ?? UUID().uuidString.lowercased()
        self.runID = runID
        self.sink = sink
        let storage = options.checkpointStorage ?? workflow.checkpointStorage
        self.storage = storage
        pipeline = storage.flatMap { $0.groupCommit ? CheckpointPipeline(storage: $0, runID: runID) : nil }
        limit = options.maxSupersteps ?? workflow.maxSupersteps
        ledger = RequestLedger([])
        var inst: [any Executor] = []
        var hs: [ExecutorHandlers] = []
        var cs: [WorkflowContext] = []
        for (i, def) in workflow.executors.enumerated() {
            let e = def.make()
            guard e.id == def.id else {
                throw WorkflowError(.executorMismatch,
                                    "the factory for executor '\(def.id)' made an executor with id '\(e.id)'; a factory must always make the same executor")
            }
            var h = ExecutorHandlers()
            e.declare(&h)
            inst.append(e)
            hs.append(h)
            cs.append(WorkflowContext(executorID: def.id, executorIndex: i, handlers: h, sink: sink, ledger: ledger))
        }
        instances = inst
        handlers = hs
        contexts = cs
        inbox = Array(repeating: [], count: inst.count)
        handlerCache = Array(repeating: [:], count: inst.count)
        fanIn = workflow.fanIns.map { Array(repeating: [], count: $0.sources.count) }
    }

    // MARK: Entry

    func prepareStart<Input: WorkflowPayload>(_ input: Input) async throws {
        guard handlerIndex(wf.start, input) != nil else {
            throw WorkflowError(.inputNotAccepted,
                                "the start executor '\(wf.startExecutorID)' of workflow '\(wf.name)' has no handler for \(Input.typeName); pass an input it handles [\(handlers[wf.start].handlers.map(\.typeName).joined(separator: ", "))]")
        }
        inflight.append(.message(source: -1, targetID: wf.startExecutorID, value: input))
    }

    func prepareResume(_ cp: Checkpoint, responses: [String: RequestResponse], cancelling: [String]) async throws {
        try wf.validate(cp)
        try restore(cp)
        // Validate every response and cancellation before changing anything.
        var staged: [InFlight] = []
        var handledIDs: Set<String> = []
        let pendingByID = Dictionary(pending.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let answeredSet = Set(answered)
        func lookup(_ id: String) throws -> PendingRequest {
            if let p = pendingByID[id] { return p }
            if answeredSet.contains(id) {
                throw WorkflowError(.alreadyAnswered, "request \(id) of run \(runID) was already answered; nothing was changed")
            }
            throw WorkflowError(.unknownRequest, "run \(runID) has no pending request \(id); nothing was changed")
        }
        for id in responses.keys.sorted(by: { (pendingOrder($0), $0) < (pendingOrder($1), $1) }) {
            let req = try lookup(id)
            let e = wf.index[req.executorID]!
            guard let h = handlers[e].responseHandler(requestTypeName: req.requestTypeName, responseTypeName: req.responseTypeName) else {
                throw WorkflowError(.graphChanged, "executor '\(req.executorID)' no longer handles \(req.requestTypeName) -> \(req.responseTypeName) responses")
            }
            let rh = handlers[e].responseHandlers[h]
            let value: any WorkflowPayload
            switch responses[id]!.storage {
            case .value(let v):
                guard ObjectIdentifier(type(of: v)) == ObjectIdentifier(rh.responseType) else {
                    throw WorkflowError(.wrongResponseType,
                                        "request \(id) expects a \(req.responseTypeName) response, got a \(typeName(of: v)); nothing was changed")
                }
                value = v
            case .json(let data):
                do { value = try rh.responseType.decodePayload(from: JSONValue(data: data)) } catch {
                    throw WorkflowError(.wrongResponseType,
                                        "request \(id) expects a \(req.responseTypeName) response; the JSON given does not decode as one (\(error)); nothing was changed")
                }
            }
            let data = try requestData(req, rh.requestType)
            staged.append(.response(req, executor: e, data: data, response: value, handler: h))
            handledIDs.insert(id)
        }
        for id in cancelling {
            let req = try lookup(id)
            guard !handledIDs.contains(id) else {
                throw WorkflowError(.alreadyAnswered, "request \(id) is both answered and cancelled in one call; nothing was changed")
            }
            let e = wf.index[req.executorID]!
            if let h = handlers[e].cancelHandlers.firstIndex(where: { $0.requestType.typeName == req.requestTypeName }) {
                staged.append(.cancellation(req, executor: e, data: try requestData(req, handlers[e].cancelHandlers[h].requestType), handler: h))
            } else {
                staged.append(.cancellation(req, executor: e, data: "", handler: -1))
            }
            handledIDs.insert(id)
        }
        // Apply.
        pending.removeAll { handledIDs.contains($0.id) }
        answered.append(contentsOf: responses.keys.sorted(by: { (pendingOrder($0), $0) < (pendingOrder($1), $1) }))
        answered.append(contentsOf: cancelling)
        inflight.append(contentsOf: staged)
        reemit = pending
    }

    private var pendingOrderCache: [String: Int]?
    private func pendingOrder(_ id: String) -> Int {
        if pendingOrderCache == nil {
            pendingOrderCache = Dictionary(pending.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        }
        return pendingOrderCache![id] ?? Int.max
    }

    private func requestData(_ req: PendingRequest, _ type: any WorkflowPayload.Type) throws -> any WorkflowPayload {
        switch req.payload {
        case .value(let v): return v
        case .json(let name, let json):
            guard name == type.typeName else {
                throw WorkflowError(.graphChanged, "request \(req.id) holds a \(name) but its handler expects a \(type.typeName)")
            }
            do { return try type.decodePayload(from: json) } catch {
                throw WorkflowError(.checkpointEncoding, "the data of request \(req.id) does not decode as \(name): \(error)")
            }
        }
    }

    private func resolve(_ p: Payload, what: String) throws -> any WorkflowPayload {
        switch p {
        case .value(let v): return v
        case .json(let name, let json):
            guard let t = wf.registry[name] else {
                throw WorkflowError(.unknownTypeName,
                                    "the checkpoint holds \(what) of type '\(name)', which workflow '\(wf.name)' does not know; register a payload type with typeName '\(name)' (declare it in a handler or sends(_:))")
            }
            do { return try t.decodePayload(from: json) } catch {
                throw WorkflowError(.checkpointEncoding, "\(what) of type '\(name)' in the checkpoint does not decode: \(error)")
            }
        }
    }

    private func restore(_ cp: Checkpoint) throws {
        superstep = cp.superstep
        pending = cp.pendingRequests
        answered = cp.answeredRequestIDs
        shared = cp.sharedState
        outputs = cp.outputs
        restoredStates = cp.executorStates
        lastCheckpoint = cp
        lastDurable = cp
        for id in pending.map(\.id) + answered { _ = ledger.claim(id) }
        for m in cp.messages {
            switch m.kind {
            case .message:
                guard let payload = m.payload else { throw WorkflowError(.checkpointEncoding, "an in-flight message has no payload") }
                let value = try resolve(payload, what: "a message")
                let source: Int
                if let s = m.source {
                    guard let i = wf.index[s] else { throw WorkflowError(.graphChanged, "the checkpoint has a message from unknown executor '\(s)'") }
                    source = i
                } else { source = -1 }
                inflight.append(.message(source: source, targetID: m.target, value: value))
            case .response, .cancellation:
                guard let req = m.request, let e = wf.index[req.executorID] else {
                    throw WorkflowError(.checkpointEncoding, "an in-flight response has no valid request")
                }
                if m.kind == .response {
                    guard let h = handlers[e].responseHandler(requestTypeName: req.requestTypeName, responseTypeName: req.responseTypeName),
                          let payload = m.payload else {
                        throw WorkflowError(.graphChanged, "executor '\(req.executorID)' no longer handles \(req.requestTypeName) -> \(req.responseTypeName)")
                    }
                    let rh = handlers[e].responseHandlers[h]
                    let value: any WorkflowPayload
                    switch payload {
                    case .value(let v): value = v
                    case .json(_, let j): value = try rh.responseType.decodePayload(from: j)
                    }
                    inflight.append(.response(req, executor: e, data: try requestData(req, rh.requestType), response: value, handler: h))
                } else {
                    if let h = handlers[e].cancelHandlers.firstIndex(where: { $0.requestType.typeName == req.requestTypeName }) {
                        inflight.append(.cancellation(req, executor: e, data: try requestData(req, handlers[e].cancelHandlers[h].requestType), handler: h))
                    } else {
                        inflight.append(.cancellation(req, executor: e, data: "", handler: -1))
                    }
                }
            }
        }
        guard cp.fanInBuffers.count == wf.fanIns.count else {
            throw WorkflowError(.graphChanged, "the checkpoint has \(cp.fanInBuffers.count) fan-in buffers, the workflow \(wf.fanIns.count)")
        }
        for (g, slots) in cp.fanInBuffers.enumerated() {
            fanIn[g] = try slots.map { try $0.map { try resolve($0, what: "a fan-in message") } }
        }
    }

    // MARK: The loop

    func drive() async -> RunResult {
        // Re-emitted requests come before anything else.
        for r in reemit { sink?(.request(r)) }
        sink?(.runStarted(runID: runID, workflow: wf.name))
        do {
            for (i, e) in instances.enumerated() {
                if let s = e as? any StatefulExecutor, let snap = restoredStates[wf.executors[i].id] {
                    try await s.restoreSnapshot(snap)
                }
            }
        } catch {
            return await fail(WorkflowError(.checkpointEncoding, "restoring executor state failed: \(error)"), dirty: false)
        }
        if inflight.isEmpty {
            // Nothing to do (e.g. a restore without responses): no empty superstep.
            return await finish(dirty: lastCheckpoint == nil)
        }
        sink?(.status(.running))
        if storage != nil {
            do { try await saveCheckpoint(status: .running) } catch { return await failSaving(error) }
        }
        var dirty = storage == nil
        while true {
            if Task.isCancelled { return await cancelled(dirty: dirty) }
            let savedFanIn = wf.fanIns.isEmpty ? [] : fanIn
            let deliveries = route()
            if deliveries == 0 {
                inflight.removeAll(keepingCapacity: true)
                break
            }
            if callSupersteps >= limit {
                fanIn = savedFanIn
                for i in active { inbox[i].removeAll(keepingCapacity: true) }
                active.removeAll(keepingCapacity: true)
                sink?(.superstepsExhausted(limit: limit))
                return await fail(WorkflowError(.superstepsExhausted,
                                          "workflow '\(wf.name)' ran \(limit) supersteps in one call and still has messages in flight; raise the limit (maxSupersteps) if the cycle is meant to run longer, or fix its exit condition"),
                            dirty: dirty)
            }
            superstep += 1
            callSupersteps += 1
            sink?(.superstepStarted(superstep))
            let failure = await runSuperstep()
            if let failure {
                // Discard the superstep: writes, sends, requests; keep the pre-routing state.
                superstep -= 1
                fanIn = savedFanIn
                for i in active { discard(i) }
                active.removeAll(keepingCapacity: true)
                if Task.isCancelled || failure.underlying is CancellationError { return await cancelled(dirty: dirty) }
                return await fail(WorkflowError(.executorFailed, "executor '\(failure.executorID)' failed: \(failure.underlying)"), dirty: dirty)
            }
            commit()
            sink?(.superstepCompleted(superstep))
            if storage != nil {
                let status: WorkflowRunState = !inflight.isEmpty ? .running : (pending.isEmpty ? .idle : .waitingForInput)
                do { try await saveCheckpoint(status: status) } catch { return await failSaving(error) }
            } else {
                dirty = true
            }
        }
        return await finish(dirty: dirty)
    }

    /// Routes `inflight` into the inboxes; returns the number of deliveries.
    func route() -> Int {
        var count = 0
        for m in inflight {
            switch m {
            case .message(let source, let targetID, let value):
                if source < 0 {
                    if let h = handlerIndex(wf.start, value) {
                        deliver(wf.start, .message(value, handler: h)); count += 1
                    } else {
                        undelivered(nil, targetID, value, "the start executor has no handler for it")
                    }
                } else {
                    count += routeFrom(source, targetID, value)
                }
            case .response(_, let e, _, _, _):
                deliver(e, deliveryFor(m)); count += 1
            case .cancellation(let req, let e, let data, let h):
                if h >= 0 {
                    deliver(e, .cancellation(req, data: data, handler: h)); count += 1
                } else {
                    cancelFailure = req
                }
            }
        }
        for (g, group) in wf.fanIns.enumerated() where fanIn[g].allSatisfy({ !$0.isEmpty }) {
            if let list = group.listType.makeList(fanIn[g].flatMap { $0 }) {
                deliver(group.target, .message(list, handler: group.handlerIndex)); count += 1
            }
            for s in fanIn[g].indices { fanIn[g][s].removeAll() }
        }
        if let req = cancelFailure {
            cancelFailure = nil
            for i in active { inbox[i].removeAll(keepingCapacity: true) }
            active.removeAll(keepingCapacity: true)
            requestCancelledFailure = req
            return 0
        }
        return count
    }

    private var cancelFailure: PendingRequest?
    private var requestCancelledFailure: PendingRequest?

    private func deliveryFor(_ m: InFlight) -> Delivery {
        if case .response(let req, _, let data, let resp, let h) = m { return .response(req, data: data, response: resp, handler: h) }
        fatalError("not a response")
    }

    @inline(__always)
    private func deliver(_ target: Int, _ d: Delivery) {
        if inbox[target].isEmpty { active.append(target) }
        inbox[target].append(d)
    }

    @inline(__always)
    func handlerIndex(_ target: Int, _ value: any WorkflowPayload) -> Int? {
        let tid = ObjectIdentifier(type(of: value))
        let hs = handlers[target].handlers
        if hs.count == 1, hs[0].typeID == tid { return 0 }
        if let cached = handlerCache[target][tid] { return cached < 0 ? nil : cached }
        let found = handlers[target].handlerIndex(for: value)
        handlerCache[target][tid] = found ?? -1
        return found
    }

    private func routeFrom(_ s: Int, _ targetID: String?, _ value: any WorkflowPayload) -> Int {
        var count = 0
        var buffered = false
        var reasons: [String] = []
        let ids = wf.executors
        for edge in wf.outEdges[s] {
            switch edge {
            case .direct(let t, let condition):
                if let targetID, targetID != ids[t].id { continue }
                guard let h = handlerIndex(t, value) else { continue }
                if let condition, !condition(value) {
                    reasons.append("the condition of edge \(ids[s].id) -> \(ids[t].id) was false")
                    continue
                }
                deliver(t, .message(value, handler: h)); count += 1
            case .fanOut(let targets, let targetIDs, let select):
                var chosen = targets
                if let select {
                    let picked = Set(select(value, targetIDs))
                    chosen = targets.filter { picked.contains(ids[$0].id) }
                    if chosen.isEmpty { reasons.append("the selection of fan-out from \(ids[s].id) chose no target") }
                }
                for t in chosen {
                    if let targetID, targetID != ids[t].id { continue }
                    guard let h = handlerIndex(t, value) else { continue }
                    deliver(t, .message(value, handler: h)); count += 1
                }
            case .switchCase(let cases, let defaultTarget):
                var t = defaultTarget
                for c in cases where c.condition(value) { t = c.target; break }
                if let targetID, targetID != ids[t].id { continue }
                guard let h = handlerIndex(t, value) else {
                    reasons.append("the switch from \(ids[s].id) chose '\(ids[t].id)', which has no handler for it")
                    continue
                }
                deliver(t, .message(value, handler: h)); count += 1
            case .fanIn(let group, let slot, let elementTypeID):
                if let targetID, targetID != ids[wf.fanIns[group].target].id { continue }
                guard ObjectIdentifier(type(of: value)) == elementTypeID else { continue }
                fanIn[group][slot].append(value)
                buffered = true
            }
        }
        if count == 0 && !buffered {
            let reason: String
            if let targetID, wf.index[targetID] == nil {
                reason = "there is no executor '\(targetID)'"
            } else if !reasons.isEmpty {
                reason = reasons.joined(separator: "; ")
            } else if let targetID {
                reason = "no edge from '\(ids[s].id)' to '\(targetID)' accepts it"
            } else {
                reason = "no edge from '\(ids[s].id)' leads to an executor that handles it"
            }
            undelivered(ids[s].id, targetID, value, reason)
        }
        return count
    }

    private func undelivered(_ source: String?, _ target: String?, _ value: any WorkflowPayload, _ reason: String) {
        sink?(.messageUndelivered(UndeliveredMessage(sourceID: source, targetID: target, typeName: typeName(of: value), reason: reason)))
    }

    /// Runs every executor with deliveries; returns the first failure (in executor order).
    private func runSuperstep() async -> ExecutorFailure? {
        for i in active { contexts[i].reset(committed: shared) }
        if active.count == 1 {
            let i = active[0]
            do { try await contexts[i].process(inbox[i]) } catch let f as ExecutorFailure { return f } catch {
                return ExecutorFailure(executorID: wf.executors[i].id, underlying: error)
            }
            return nil
        }
        var failures: [Int: ExecutorFailure] = [:]
        await withTaskGroup(of: (Int, ExecutorFailure?).self) { group in
            for i in active {
                let ctx = contexts[i]
                let work = inbox[i]
                group.addTask {
                    do { try await ctx.process(work) } catch let f as ExecutorFailure { return (i, f) } catch {
                        return (i, ExecutorFailure(executorID: ctx.executorID, underlying: error))
                    }
                    return (i, nil)
                }
            }
            for await (i, f) in group { if let f { failures[i] = f } }
        }
        if let first = failures.keys.min() { return failures[first] }
        return nil
    }

    /// Commits a successful superstep, executors in declaration order.
    private func commit() {
        if active.count > 1 { active.sort() }
        next.removeAll(keepingCapacity: true)
        for i in active {
            let ctx = contexts[i]
            for (k, v) in ctx.writes {
                if let v { shared[k] = v } else { shared[k] = nil }
            }
            for m in ctx.outbox { next.append(.message(source: i, targetID: m.targetID, value: m.value)) }
            for r in ctx.requests {
                pending.append(r)
                sink?(.request(r))
            }
            if !ctx.outputs.isEmpty {
                outputs.append(contentsOf: ctx.outputs)
                callOutputs.append(contentsOf: ctx.outputs)
            }
            inbox[i].removeAll(keepingCapacity: true)
        }
        active.removeAll(keepingCapacity: true)
        swap(&inflight, &next)
    }

    private func discard(_ i: Int) {
        for r in contexts[i].requests { ledger.release(r.id) }
        contexts[i].reset(committed: [:])
        inbox[i].removeAll(keepingCapacity: true)
    }

    // MARK: Endings

    private func finish(dirty: Bool) async -> RunResult {
        if let req = requestCancelledFailure {
            return await fail(WorkflowError(.requestCancelled,
                                      "request \(req.id) of executor '\(req.executorID)' was cancelled and the executor has no onRequestCancelled handler for \(req.requestTypeName)"),
                        dirty: dirty)
        }
        let status: WorkflowRunState = pending.isEmpty ? .idle : .waitingForInput
        return await end(status, error: nil, dirty: dirty)
    }

    private func fail(_ error: WorkflowError, dirty: Bool) async -> RunResult {
        sink?(.failed(error))
        return await end(.failed, error: error, dirty: dirty)
    }

    private func cancelled(dirty: Bool) async -> RunResult {
        await end(.cancelled, error: nil, dirty: dirty)
    }

    private func failSaving(_ error: any Error) async -> RunResult {
        let e = error as? WorkflowError ?? WorkflowError(.storageFailed, "\(error)")
        storageFailureReported = true
        return await fail(e, dirty: false)
    }

    private func end(_ status: WorkflowRunState, error: WorkflowError?, dirty: Bool) async -> RunResult {
        var status = status, error = error
        if let pipeline {
            // Every return path waits here: the call never returns before its checkpoints are durable.
            let failure = await pipeline.drain()
            publishDurable()
            if let failure, !storageFailureReported {
                storageFailureReported = true
                if let earlier = error {
                    error = WorkflowError(failure.code, failure.message + " (the run had also failed: \(earlier.message))")
                } else {
                    error = failure
                }
                status = .failed
                sink?(.failed(error!))
            }
            // After a failed save, the result points at the last durable checkpoint.
            if failure != nil { lastCheckpoint = lastDurable }
        }
        var checkpoint: Checkpoint
        if dirty || lastCheckpoint == nil {
            let states = (try? await snapshots()) ?? [:]
            checkpoint = makeCheckpoint(status: status, states: states, parentID: lastCheckpoint?.id)
        } else {
            checkpoint = lastCheckpoint!
        }
        sink?(.status(status))
        return RunResult(runID: runID, status: status, outputs: callOutputs, pendingRequests: pending,
                         error: error, checkpoint: checkpoint, supersteps: callSupersteps)
    }

    // MARK: Checkpoints

    private func snapshots() async throws -> [String: ExecutorSnapshot] {
        var states: [String: ExecutorSnapshot] = [:]
        for (i, e) in instances.enumerated() {
            if let s = e as? any StatefulExecutor { states[wf.executors[i].id] = try await s.takeSnapshot() }
        }
        return states
    }

    private func saveCheckpoint(status: WorkflowRunState) async throws {
        let cp = makeCheckpoint(status: status, states: try await snapshots(), parentID: lastCheckpoint?.id)
        if let pipeline {
            // Handed over; `end` awaits its durability. Reports the ones committed meanwhile.
            try pipeline.submit(cp)
            lastCheckpoint = cp
            publishDurable()
            return
        }
        do { try await storage!.save(cp) } catch let e as WorkflowError { throw e } catch {
            throw WorkflowError(.storageFailed, "saving checkpoint \(cp.id) of run \(runID) failed: \(error)")
        }
        lastCheckpoint = cp
        lastDurable = cp
        sink?(.checkpointSaved(checkpointID: cp.id, superstep: cp.superstep))
    }

    /// Sends `checkpointSaved` for the checkpoints the pipeline has committed since the last call.
    private func publishDurable() {
        guard let pipeline else { return }
        for cp in pipeline.takeDurable() {
            lastDurable = cp
            sink?(.checkpointSaved(checkpointID: cp.id, superstep: cp.superstep))
        }
    }

    private func makeCheckpoint(status: WorkflowRunState, states: [String: ExecutorSnapshot], parentID: String?) -> Checkpoint {
        let messages = inflight.map { m -> InFlightMessage in
            switch m {
            case .message(let s, let t, let v):
                InFlightMessage(kind: .message, source: s < 0 ? nil : wf.executors[s].id, target: t, payload: .value(v), request: nil)
            case .response(let req, _, _, let resp, _):
                InFlightMessage(kind: .response, source: nil, target: req.executorID, payload: .value(resp), request: req)
            case .cancellation(let req, _, _, _):
                InFlightMessage(kind: .cancellation, source: nil, target: req.executorID, payload: nil, request: req)
            }
        }
        var allStates = restoredStates
        for (k, v) in states { allStates[k] = v }
        return Checkpoint(
            version: Checkpoint.formatVersion, id: UUID().uuidString.lowercased(), runID: runID, parentID: parentID,
            workflowName: wf.name, graphHash: wf.graphHash, graph: wf.graph, superstep: superstep, createdAt: Date(),
            status: status, messages: messages, pendingRequests: pending, answeredRequestIDs: answered,
            sharedState: shared, executorStates: allStates,
            fanInBuffers: fanIn.map { $0.map { $0.map { Payload.value($0) } } }, outputs: outputs)
    }
}
