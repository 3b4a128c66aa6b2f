import Foundation

/// One case of a switch-case edge group: a condition and its target, or the default target.
public struct SwitchCase: Sendable {
    let condition: (@Sendable (any WorkflowPayload) -> Bool)?
    let target: String

    /// Routes messages of type `T` for which `condition` is true to `target`. Cases are tried in
    /// order; the first true case wins.
    public static func when<T: WorkflowPayload>(
        _ type: T.Type, to target: String, _ condition: @escaping @Sendable (T) -> Bool
    ) -> SwitchCase {
        SwitchCase(condition: { ($0 as? T).map(condition) ?? false }, target: target)
    }

    /// The target for messages no case matched. A switch needs exactly one.
    public static func `default`(_ target: String) -> SwitchCase {
        SwitchCase(condition: nil, target: target)
    }
}

/// An edge group as the builder records it (ids, not yet resolved).
enum EdgeSpec: Sendable {
    case direct(from: String, to: String, condition: (@Sendable (any WorkflowPayload) -> Bool)?)
    case fanOut(from: String, to: [String], select: (@Sendable (any WorkflowPayload, [String]) -> [String])?)
    case switchCase(from: String, cases: [SwitchCase])
    case fanIn(from: [String], to: String)

    var sources: [String] {
        switch self {
        case .direct(let f, _, _), .fanOut(let f, _, _), .switchCase(let f, _): [f]
        case .fanIn(let f, _): f
        }
    }

    var targets: [String] {
        switch self {
        case .direct(_, let t, _): [t]
        case .fanOut(_, let t, _): t
        case .switchCase(_, let cases):
            cases.map(\.target).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        case .fanIn(_, let t): [t]
        }
    }

    /// How the edge appears in the graph description (and so in the graph hash).
    var signature: String {
        switch self {
        case .direct(let f, let t, let c): "direct \(f) -> \(t)\(c == nil ? "" : " (conditional)")"
        case .fanOut(let f, let t, let s):
            "fan-out \(f) -> [\(t.joined(separator: ", "))]\(s == nil ? "" : " (selection)")"
        case .switchCase(let f, let cases):
            "switch \(f) -> [\(cases.map { $0.condition == nil ? "default: \($0.target)" : $0.target }.joined(separator: ", "))]"
        case .fanIn(let f, let t): "fan-in [\(f.joined(separator: ", "))] -> \(t)"
        }
    }
}

/// A resolved outgoing edge of one source executor (indices into the workflow's executors).
enum OutEdge: Sendable {
    case direct(target: Int, condition: (@Sendable (any WorkflowPayload) -> Bool)?)
    case fanOut(targets: [Int], targetIDs: [String], select: (@Sendable (any WorkflowPayload, [String]) -> [String])?)
    case switchCase(cases: [(condition: @Sendable (any WorkflowPayload) -> Bool, target: Int)], defaultTarget: Int)
    case fanIn(group: Int, sourceSlot: Int, elementTypeID: ObjectIdentifier)
}

/// A resolved fan-in group.
struct FanInGroup: Sendable {
    let sources: [Int]
    let target: Int
    let elementType: any WorkflowPayload.Type
    let listType: any PayloadList.Type
    let handlerIndex: Int
}
