import Foundation
import SignoffEngine
import SignoffExamples
import Testing

struct CheckpointTests {
    // 9
    @Test func checkpointAfterEverySuperstepWithAnUnbrokenParentChain() async throws {
        let storage: any CheckpointStorage = InMemoryCheckpointStorage()
        let recorder = EventRecorder()
        let wf = try counterWorkflow(limit: 3)
        let result = try await wf.run(0, options: RunOptions(checkpointStorage: storage), onEvent: recorder.sink)
        #expect(result.status == .idle)
        #expect(result.supersteps == 4)
        let chain = try await storage.list(runID: result.runID)
        #expect(chain.map(\.superstep) == [0, 1, 2, 3, 4])  // entry, then one per superstep
        #expect(chain.first?.parentID == nil)
        for (parent, child) in zip(chain, chain.dropFirst()) { #expect(child.parentID == parent.id) }
        #expect(chain[0].messagesInFlight == 1)
        #expect(chain.last?.messagesInFlight == 0)
        #expect(chain.last?.outputs.compactMap { $0.value(as: Int.self) } == [3])
        let saved = recorder.all.compactMap { if case .checkpointSaved(let id, _) = $0 { id } else { nil } }
        #expect(saved == chain.map(\.id))
        #expect(try await storage.latest(runID: result.runID)?.id == chain.last?.id)
        #expect(result.checkpoint.id == chain.last?.id)
    }

    // 10
    @Test func pausedRunRestoresFromBytesInAFreshWorkflowAndReEmitsTheRequest() async throws {
        let paused = try await SeedExamples.guessingWorkflow().run(7)
        let requestID = try #require(paused.pendingRequests.first?.id)
        let bytes = try paused.checkpoint.encoded()

        let fresh = try SeedExamples.guessingWorkflow()
        let restored = try Checkpoint.decode(from: bytes)
        let events = try await collect(fresh.resumeStreaming(from: restored))
        #expect(events.map(label) == ["request:\(requestID)", "started", "status:waitingForInput"])
        #expect(!events.contains { if case .superstepStarted = $0 { true } else { false } })

        let done = try await fresh.resume(from: restored, responses: [requestID: 42])
        #expect(done.outputs(as: String.self) == ["42 found in 2 tries!"])
    }

    // 11
    @Test func resumingWithResponsesDoesNotReEmitTheAnsweredRequest() async throws {
        let wf = try twoQuestionsWorkflow()
        let paused = try await wf.run("boxes")
        let cp = try Checkpoint.decode(from: paused.checkpoint.encoded())
        let events = try await collect(wf.resumeStreaming(from: cp, responses: ["count": .value(2)]))
        #expect(requests(events).map(\.id) == ["ship"])
        #expect(events.first.map(label) == "request:ship")
        #expect(statuses(events).last == .waitingForInput)
    }

    // 12
    @Test func restoringOntoAChangedGraphIsAClearError() async throws {
        let paused = try await SeedExamples.approvalWorkflow().run("deploy")
        let changed = try WorkflowBuilder(name: "approval-gate")
            .addExecutor(Relay(id: "intake"))
            .addExecutor(ApprovalGate())
            .addEdge("intake", "approval_gate")
            .setStart("intake").build()
        await #expect { try await changed.resume(from: paused.checkpoint, responses: ["approve": true]) } throws: { error in
            guard let e = error as? WorkflowError, e.code == .graphChanged else { return false }
            return e.message.contains("start executor changed from 'approval_gate' to 'intake'")
                && e.message.contains("executor 'intake' was added")
                && e.message.contains("edge 'direct intake -> approval_gate' was added")
        }
        let other = try WorkflowBuilder(name: "something-else").addExecutor(ApprovalGate()).setStart("approval_gate").build()
        #expect { try other.validate(paused.checkpoint) } throws: { ($0 as? WorkflowError)?.code == .workflowMismatch }
    }

    // 15
    @Test func fanInBuffersAcrossSuperstepsAndSurvivesACheckpointRoundTrip() async throws {
        func make() throws -> Workflow {
            try WorkflowBuilder(name: "fan-in")
                .addExecutor(FunctionExecutor(id: "fork") { h in
                    h.on(String.self) { s, ctx in try ctx.send(s) }
                    h.sends(String.self)
                })
                .addExecutor(FunctionExecutor(id: "a") { h in
                    h.on(String.self) { _, ctx in
                        try ctx.send(Tick(source: "a", n: 0)); try ctx.send(Tick(source: "a", n: 1))
                    }
                    h.sends(Tick.self)
                })
                .addExecutor(FunctionExecutor(id: "b") { h in
                    // b waits two supersteps (a self-loop counting down) before it sends.
                    h.on(String.self) { _, ctx in try ctx.send(2, to: "b") }
                    h.on(Int.self) { n, ctx in
                        if n > 0 { try ctx.send(n - 1, to: "b") } else { try ctx.send(Tick(source: "b", n: 0)) }
                    }
                    h.sends(Int.self); h.sends(Tick.self)
                })
                .addExecutor(FunctionExecutor(id: "agg") { h in
                    h.on([Tick].self) { ticks, ctx in try ctx.yieldOutput(ticks.map { "\($0.source)\($0.n)" }.joined(separator: ",")) }
                    h.yields(String.self)
                })
                .addFanOut("fork", to: ["a", "b"])
                .addEdge("b", "b")
                .addFanIn(["a", "b"], to: "agg")
                .setStart("fork").build()
        }
        let storage: any CheckpointStorage = InMemoryCheckpointStorage()
        let whole = try await make().run("go", options: RunOptions(checkpointStorage: storage))
        #expect(whole.outputs(as: String.self) == ["a0,a1,b0"])
        let chain = try await storage.list(runID: whole.runID)
        // a's ticks are routed into the buffer at the start of superstep 3; after it they wait there
        // while b still counts down.
        let middle = try #require(chain.first { $0.superstep == 3 })
        #expect(middle.fanInBufferCounts == [[2, 0]])
        let restored = try Checkpoint.decode(from: middle.encoded())
        let rest = try await make().resume(from: restored)
        #expect(rest.status == .idle)
        #expect(rest.outputs(as: String.self) == ["a0,a1,b0"])
    }

    // 21
    @Test func cancellationEmitsCancelledAndTheLastCheckpointRestores() async throws {
        let storage: any CheckpointStorage = InMemoryCheckpointStorage()
        let recorder = EventRecorder()
        let wf = try counterWorkflow(limit: 30, delay: .milliseconds(20))
        let task = Task { try await wf.run(0, options: RunOptions(runID: "cancel-me", checkpointStorage: storage), onEvent: recorder.sink) }
        while recorder.all.filter({ if case .checkpointSaved = $0 { true } else { false } }).count < 3 {
            try await Task.sleep(for: .milliseconds(5))
        }
        task.cancel()
        let result = try await task.value
        #expect(result.status == .cancelled)
        #expect(recorder.all.last.map(label) == "status:cancelled")
        let last = try #require(try await storage.latest(runID: "cancel-me"))
        #expect(result.checkpoint.id == last.id)
        #expect(last.superstep < 31)
        let finished = try await wf.resume(from: Checkpoint.decode(from: last.encoded()))
        #expect(finished.status == .idle)
        #expect(finished.outputs(as: Int.self) == [30])
    }

    @Test func payloadsWithDatesAndJSONSurviveCheckpointBytes() async throws {
        struct Stamp: WorkflowPayload, Equatable {
            static let typeName = "Stamp"
            var at: Date
            var note: JSONValue
        }
        let stamp = Stamp(at: Date(timeIntervalSince1970: 1_700_000_000.25), note: .object(["k": .array([.integer(1), .string("x")])]))
        let wf = try WorkflowBuilder(name: "stamps").addExecutor(FunctionExecutor(id: "s") { h in
            h.on(String.self) { _, ctx in
                ctx.setState("stamp", stamp)
                try ctx.requestInfo(stamp, responseType: Stamp.self)
            }
            h.onResponse(to: Stamp.self, Stamp.self) { asked, answer, ctx in try ctx.yieldOutput(asked == answer) }
            h.yields(Bool.self)
        }).setStart("s").build()
        let paused = try await wf.run("go")
        let cp = try Checkpoint.decode(from: paused.checkpoint.encoded())
        #expect(try cp.sharedState("stamp", as: Stamp.self) == stamp)
        let request = try #require(cp.pendingRequests.first)
        #expect(try request.data(as: Stamp.self) == stamp)
        let done = try await wf.resume(from: cp, responses: [request.id: .json(try request.dataJSON)])
        #expect(done.outputs(as: Bool.self) == [true])
    }

    @Test func unknownTypeNameInACheckpointIsAClearError() async throws {
        let storage: any CheckpointStorage = InMemoryCheckpointStorage()
        _ = try await counterWorkflow(limit: 2).run(0, options: RunOptions(runID: "r", checkpointStorage: storage))
        let entry = try #require(try await storage.list(runID: "r").first)
        let json = String(decoding: try entry.encoded(), as: UTF8.self).replacingOccurrences(of: "\"type\":\"Int\"", with: "\"type\":\"Integer\"")
        let renamed = try Checkpoint.decode(from: Data(json.utf8))
        await #expect { try await counterWorkflow(limit: 2).resume(from: renamed) } throws: { error in
            guard let e = error as? WorkflowError else { return false }
            return e.code == .unknownTypeName && e.message.contains("'Integer'")
        }
        let future = json.replacingOccurrences(of: "\"version\":1", with: "\"version\":99")
        #expect { try Checkpoint.decode(from: Data(future.utf8)) } throws: { ($0 as? WorkflowError)?.code == .unsupportedCheckpointVersion }
    }

    @Test func fileStorageSavesAtomicallyAndListsLoadsAndDeletes() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signoff-cp-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try FileCheckpointStorage(directory: dir)
        let result = try await counterWorkflow(limit: 3).run(0, options: RunOptions(runID: "run/1", checkpointStorage: storage))
        let chain = try await storage.list(runID: "run/1")
        #expect(chain.map(\.superstep) == [0, 1, 2, 3, 4])
        #expect(try await storage.latest(runID: "run/1")?.id == result.checkpoint.id)
        #expect(try await storage.load(id: chain[2].id)?.superstep == 2)
        #expect(try await storage.load(id: "missing") == nil)
        try await storage.delete(id: chain[4].id)
        #expect(try await storage.latest(runID: "run/1")?.id == chain[3].id)
        #expect(try await storage.list(runID: "other").isEmpty)
        let names = try FileManager.default.subpathsOfDirectory(atPath: dir.path)
        #expect(!names.contains { $0.hasSuffix(".tmp") })
        // A restored checkpoint from disk finishes the run.
        let resumed = try await counterWorkflow(limit: 3).resume(from: try #require(try await storage.load(id: chain[1].id)))
        #expect(resumed.outputs(as: Int.self) == [3])
    }
}
