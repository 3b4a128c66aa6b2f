import Synchronization
@testable import SignoffStore
import Testing

/// The coalescer under the store's set-based writes: many callers, few batches, each caller its own result.
struct CoalescerTests {
    /// Records the batches it was given; the first batch waits until `release` so others queue up behind it.
    final class Recorder: Sendable {
        let batches = Mutex<[[Int]]>([])
    }

    @Test func concurrentSubmissionsShareBatchesAndEachGetsItsOwnResult() async throws {
        let recorder = Recorder()
        let (firstStarted, signalStarted) = AsyncStream<Void>.makeStream()
        let (release, releaseGate) = AsyncStream<Void>.makeStream()
        let coalescer = Coalescer<Int, Int>(lanes: 1, maxBatch: 100) { ops in
            let isFirst = recorder.batches.withLock { b in b.append(ops); return b.count == 1 }
            if isFirst {
                signalStarted.yield()
                for await _ in release { break }
            }
            return ops.map { op in op % 7 == 0 ? .failure(StoreError(.invalidState, "op \(op) refused")) : .success(op * 10) }
        }
        let results = await withTaskGroup(of: (Int, Result<Int, StoreError>).self) { group in
            group.addTask { await (0, Self.run(coalescer, 0)) }
            for await _ in firstStarted { break }
            // The lane is busy with op 0: everything submitted now queues for the next batch.
            for i in 1...50 { group.addTask { await (i, Self.run(coalescer, i)) } }
            while coalescer.queued < 50 { await Task.yield() }
            releaseGate.yield()
            var out: [Int: Result<Int, StoreError>] = [:]
            for await (i, r) in group { out[i] = r }
            return out
        }
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.count == 2)
        #expect(batches[0] == [0])
        #expect(batches[1].sorted() == Array(1...50))
        for i in 0...50 {
            if i % 7 == 0 {
                #expect(throws: StoreError.self) { try results[i]!.get() }
            } else {
                #expect(try results[i]!.get() == i * 10)
            }
        }
    }

    @Test func aBatchThatThrowsFailsEveryCallerInIt() async throws {
        let coalescer = Coalescer<Int, Int>(lanes: 2, maxBatch: 8) { _ in throw StoreError(.connectionLost, "server gone") }
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    let r = await Self.run(coalescer, i)
                    #expect(throws: StoreError.self) { try r.get() }
                }
            }
        }
        // The lanes were given back: a later submission runs (and fails the same way) instead of hanging.
        let later = await Self.run(coalescer, 99)
        #expect(throws: StoreError.self) { try later.get() }
    }

    static func run(_ c: Coalescer<Int, Int>, _ i: Int) async -> Result<Int, StoreError> {
        do { return .success(try await c.submit(i)) } catch let e as StoreError { return .failure(e) } catch {
            return .failure(StoreError(.queryFailed, "\(error)"))
        }
    }
}
