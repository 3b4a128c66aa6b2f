import Foundation

/// The shape of a workflow as a checkpoint records it, so a restore onto a changed graph can say
/// exactly what changed.
public struct GraphDescription: Codable, Sendable, Hashable {
    /// The start executor's id.
    public var start: String
    /// Executor id → its signature (handled, response, sent and yielded type names).
    public var executors: [String: String]
    /// One line per edge group, in declaration order.
    public var edges: [String]

    /// A short stable hash of the description (FNV-1a 64, hex).
    public var hash: String {
        var text = "start \(start)\n"
        for id in executors.keys.sorted() { text += "executor \(id): \(executors[id]!)\n" }
        for e in edges { text += "edge \(e)\n" }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// What differs between `old` (a checkpoint's graph) and this one, one phrase per change.
    public func changes(since old: GraphDescription) -> [String] {
        var out: [String] = []
        if old.start != start { out.append("start executor changed from '\(old.start)' to '\(start)'") }
        for id in old.executors.keys.sorted() where executors[id] == nil { out.append("executor '\(id)' was removed") }
        for id in executors.keys.sorted() where old.executors[id] == nil { out.append("executor '\(id)' was added") }
        for id in executors.keys.sorted() {
            if let was = old.executors[id], let now = executors[id], was != now {
                out.append("executor '\(id)' changed (was \(was); now \(now))")
            }
        }
        for e in old.edges where !edges.contains(e) { out.append("edge '\(e)' was removed") }
        for e in edges where !old.edges.contains(e) { out.append("edge '\(e)' was added") }
        return out
    }
}

extension ExecutorHandlers {
    var signature: String {
        "handles [\(handlers.map(\.typeName).joined(separator: ", "))]"
            + " responds [\(responseHandlers.map { "\($0.requestTypeName)->\($0.responseTypeName)" }.joined(separator: ", "))]"
            + " sends [\(sendTypes.map { $0.type.typeName }.joined(separator: ", "))]"
            + " yields [\(yieldTypes.map { $0.type.typeName }.joined(separator: ", "))]"
    }
}
