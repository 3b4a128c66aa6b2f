import Foundation

/// Assembles executors and edges into an immutable `Workflow`, validating the graph.
///
/// ```swift
/// let workflow = try WorkflowBuilder(name: "guess")
///     .addExecutor { JudgeExecutor(targetNumber: 42) }
///     .setStart("judge")
///     .build()
/// ```
/// `build()` throws a `WorkflowError` for a duplicate id, a duplicate edge, a missing start, an
/// edge whose source sends nothing the target accepts, an unreachable executor, a fan-in target
/// without a list handler, or a switch without exactly one default.
public final class WorkflowBuilder {
    private let name: String
    private var factories: [(id: String, make: @Sendable () -> any Executor)] = []
    private var edges: [EdgeSpec] = []
    private var startID: String?
    private var maxSupersteps = 100
    private var storage: (any CheckpointStorage)?

    /// Starts a workflow definition called `name` (recorded in checkpoints).
    public init(name: String) {
        self.name = name
    }

    /// Adds an executor made fresh for every run by `factory` (use this for executors with state).
    @discardableResult
    public func addExecutor(_ factory: @escaping @Sendable () -> any Executor) -> Self {
        let probe = factory()
        factories.append((probe.id, factory))
        return self
    }

    /// Adds one executor instance shared by every run (fine for executors without state).
    @discardableResult
    public func addExecutor(_ executor: some Executor) -> Self {
        factories.append((executor.id, { executor }))
        return self
    }

    /// Names the executor that receives the run's input.
    @discardableResult
    public func setStart(_ id: String) -> Self {
        startID = id
        return self
    }

    /// A direct edge: every message from `source` that `target` accepts.
    @discardableResult
    public func addEdge(_ source: String, _ target: String) -> Self {
        edges.append(.direct(from: source, to: target, condition: nil))
        return self
    }

    /// A conditional edge: messages of type `T` for which `condition` is true. A message the
    /// condition rejects (and no other edge delivers) yields a `messageUndelivered` event.
    @discardableResult
    public func addEdge<T: WorkflowPayload>(
        _ source: String, _ target: String, when type: T.Type, _ condition: @escaping @Sendable (T) -> Bool
    ) -> Self {
        edges.append(.direct(from: source, to: target, condition: { ($0 as? T).map(condition) ?? false }))
        return self
    }

    /// Direct edges along a chain: ids[0] → ids[1] → ….
    @discardableResult
    public func addChain(_ ids: [String]) -> Self {
        for (a, b) in zip(ids, ids.dropFirst()) { addEdge(a, b) }
        return self
    }

    /// A fan-out edge group: each message goes to every target that accepts it.
    @discardableResult
    public func addFanOut(_ source: String, to targets: [String]) -> Self {
        edges.append(.fanOut(from: source, to: targets, select: nil))
        return self
    }

    /// A fan-out edge group with a selection function returning the subset of target ids that get
    /// each message of type `T`.
    @discardableResult
    public func addFanOut<T: WorkflowPayload>(
        _ source: String, to targets: [String], selecting type: T.Type,
        _ select: @escaping @Sendable (T, [String]) -> [String]
    ) -> Self {
        edges.append(.fanOut(from: source, to: targets, select: { v, ids in (v as? T).map { select($0, ids) } ?? [] }))
        return self
    }

    /// A switch-case edge group: ordered cases, the first true one wins, else the one default.
    @discardableResult
    public func addSwitch(_ source: String, _ cases: [SwitchCase]) -> Self {
        edges.append(.switchCase(from: source, cases: cases))
        return self
    }

    /// A fan-in edge group: buffers messages from every source until each has sent at least one,
    /// then delivers them to `target` as one list, ordered by source then arrival. The target needs
    /// a handler for a list of the sources' message type, e.g. `on([Tick].self)`.
    @discardableResult
    public func addFanIn(_ sources: [String], to target: String) -> Self {
        edges.append(.fanIn(from: sources, to: target))
        return self
    }

    /// The default superstep limit of one `run`/`resume` call (100 unless set).
    @discardableResult
    public func maxSupersteps(_ limit: Int) -> Self {
        maxSupersteps = limit
        return self
    }

    /// A checkpoint storage used by every run unless the run's options name another.
    @discardableResult
    public func withCheckpointing(_ storage: any CheckpointStorage) -> Self {
        self.storage = storage
        return self
    }

    /// Validates the graph and returns the immutable workflow definition.
    public func build() throws -> Workflow {
        // Executors and their ids.
        var defs: [ExecutorDefinition] = []
        var index: [String: Int] = [:]
        for f in factories {
            if index[f.id] != nil {
                throw WorkflowError(.duplicateExecutorID,
                                    "executor id '\(f.id)' is used twice in workflow '\(name)'; executor ids must be unique")
            }
            let instance = f.make()
            var h = ExecutorHandlers()
            instance.declare(&h)
            var seen: Set<String> = []
            for r in h.responseHandlers {
                let key = "\(r.requestTypeName)->\(r.responseTypeName)"
                if !seen.insert(key).inserted {
                    throw WorkflowError(.duplicateResponseHandler,
                                        "executor '\(f.id)' declares two response handlers for request \(r.requestTypeName) with response \(r.responseTypeName); keep one")
                }
            }
            index[f.id] = defs.count
            defs.append(ExecutorDefinition(id: f.id, make: f.make, declaration: h))
        }
        guard let startID else {
            throw WorkflowError(.missingStart,
                                "workflow '\(name)' has no start executor; call setStart(_:) with the id of the executor that takes the run's input")
        }
        guard let start = index[startID] else {
            throw WorkflowError(.missingStart,
                                "the start executor '\(startID)' of workflow '\(name)' is not among its executors; add it or fix the id")
        }

        // Edge structure.
        var pairs: Set<String> = []
        for e in edges {
            for id in e.sources + e.targets where index[id] == nil {
                throw WorkflowError(.unknownExecutor, "edge '\(e.signature)' names unknown executor '\(id)'; add the executor or fix the id")
            }
            for s in e.sources {
                for t in e.targets where !pairs.insert("\(s)\u{0}\(t)").inserted {
                    throw WorkflowError(.duplicateEdge, "the edge \(s) -> \(t) is declared twice; remove one")
                }
            }
            switch e {
            case .fanOut(let f, let t, _) where t.count < 2:
                throw WorkflowError(.invalidEdge, "the fan-out from '\(f)' has \(t.count) target(s); a fan-out needs at least 2 (use addEdge for one)")
            case .fanIn(let f, let t) where f.count < 2:
                throw WorkflowError(.invalidEdge, "the fan-in into '\(t)' has \(f.count) source(s); a fan-in needs at least 2 (use addEdge for one)")
            case .switchCase(let f, let cases):
                let defaults = cases.filter { $0.condition == nil }.count
                if defaults == 0 {
                    throw WorkflowError(.switchDefault, "the switch from '\(f)' has no default case; add .default(target) as its last case")
                }
                if defaults > 1 {
                    throw WorkflowError(.switchDefault, "the switch from '\(f)' has \(defaults) default cases; keep exactly one")
                }
            default: break
            }
        }

        // Type compatibility, fan-in list handlers, resolved out-edges.
        var out = Array(repeating: [OutEdge](), count: defs.count)
        var fanIns: [FanInGroup] = []
        func check(_ s: Int, _ t: Int, _ e: EdgeSpec) throws {
            let sends = defs[s].declaration.sendTypes
            if !sends.contains(where: { defs[t].declaration.accepts(type: $0.type) }) {
                throw WorkflowError(.incompatibleEdge,
                                    "edge '\(e.signature)' can deliver nothing: '\(defs[s].id)' sends [\(sends.map { $0.type.typeName }.joined(separator: ", "))] and '\(defs[t].id)' handles [\(defs[t].declaration.handlers.map(\.typeName).joined(separator: ", "))]; declare a matching sends(_:) or handler")
            }
        }
        for e in edges {
            switch e {
            case .direct(let f, let t, let c):
                try check(index[f]!, index[t]!, e)
                out[index[f]!].append(.direct(target: index[t]!, condition: c))
            case .fanOut(let f, let ts, let sel):
                for t in ts { try check(index[f]!, index[t]!, e) }
                out[index[f]!].append(.fanOut(targets: ts.map { index[$0]! }, targetIDs: ts, select: sel))
            case .switchCase(let f, let cases):
                for t in e.targets { try check(index[f]!, index[t]!, e) }
                let conds = cases.compactMap { c in c.condition.map { (condition: $0, target: index[c.target]!) } }
                let def = index[cases.first { $0.condition == nil }!.target]!
                out[index[f]!].append(.switchCase(cases: conds, defaultTarget: def))
            case .fanIn(let fs, let t):
                let target = index[t]!
                let handlers = defs[target].declaration.handlers
                var found: (Int, any PayloadList.Type)?
                for (hi, h) in handlers.enumerated() {
                    guard let list = h.payloadType as? any PayloadList.Type else { continue }
                    let element = ObjectIdentifier(list.elementType)
                    if fs.allSatisfy({ defs[index[$0]!].declaration.sendTypes.contains { $0.typeID == element } }) {
                        found = (hi, list); break
                    }
                }
                guard let (hi, list) = found else {
                    let sent = fs.map { "\($0) sends [\(defs[index[$0]!].declaration.sendTypes.map { $0.type.typeName }.joined(separator: ", "))]" }
                    throw WorkflowError(.fanInWithoutListHandler,
                                        "fan-in target '\(t)' has no handler for a list of a type every source sends (\(sent.joined(separator: "; "))); add e.g. on([T].self)")
                }
                let group = fanIns.count
                fanIns.append(FanInGroup(sources: fs.map { index[$0]! }, target: target,
                                         elementType: list.elementType, listType: list, handlerIndex: hi))
                for (slot, f) in fs.enumerated() {
                    out[index[f]!].append(.fanIn(group: group, sourceSlot: slot, elementTypeID: ObjectIdentifier(list.elementType)))
                }
            }
        }

        // Reachability from the start executor.
        var reached: Set<Int> = [start]
        var queue = [start]
        while let n = queue.popLast() {
            for e in edges where e.sources.contains(defs[n].id) {
                for t in e.targets.map({ index[$0]! }) where reached.insert(t).inserted { queue.append(t) }
            }
        }
        for (i, d) in defs.enumerated() where !reached.contains(i) {
            throw WorkflowError(.unreachableExecutor,
                                "executor '\(d.id)' is unreachable from the start executor '\(startID)'; connect it with an edge or remove it")
        }

        // Payload types by stable name (for decoding checkpoints).
        var registry: [String: any WorkflowPayload.Type] = [:]
        func register(_ t: any WorkflowPayload.Type) throws {
            if let old = registry[t.typeName] {
                if ObjectIdentifier(old) != ObjectIdentifier(t) {
                    throw WorkflowError(.duplicateTypeName,
                                        "two different types use the stable name '\(t.typeName)'; give each payload type its own typeName")
                }
                return
            }
            registry[t.typeName] = t
            if let list = t as? any PayloadList.Type { try register(list.elementType) }
        }
        for d in defs {
            for h in d.declaration.handlers { if let p = h.payloadType { try register(p) } }
            for s in d.declaration.sendTypes { try register(s.type) }
            for s in d.declaration.yieldTypes { try register(s.type) }
            for r in d.declaration.responseHandlers { try register(r.requestType); try register(r.responseType) }
        }

        let graph = GraphDescription(
            start: startID,
            executors: Dictionary(uniqueKeysWithValues: defs.map { ($0.id, $0.declaration.signature) }),
            edges: edges.map(\.signature))
        return Workflow(name: name, executors: defs, index: index, start: start, outEdges: out,
                        fanIns: fanIns, registry: registry, graph: graph, maxSupersteps: maxSupersteps,
                        checkpointStorage: storage)
    }
}

/// One executor of a built workflow.
struct ExecutorDefinition: Sendable {
    let id: String
    let make: @Sendable () -> any Executor
    let declaration: ExecutorHandlers
}
