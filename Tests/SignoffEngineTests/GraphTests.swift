import Foundation
import SignoffEngine
import SignoffExamples
import Testing

struct GraphTests {
    // 13
    @Test func cycleStopsAtItsExitConditionAndARunawayCycleAtTheSuperstepLimit() async throws {
        let bounded = try await counterWorkflow(limit: 5).run(0)
        #expect(bounded.status == .idle)
        #expect(bounded.outputs(as: Int.self) == [5])
        #expect(bounded.supersteps == 6)

        let recorder = EventRecorder()
        let runaway = try await counterWorkflow(limit: nil, max: 10).run(0, onEvent: recorder.sink)
        #expect(runaway.status == .failed)
        #expect(runaway.error?.code == .superstepsExhausted)
        #expect(runaway.supersteps == 10)
        #expect(recorder.all.suffix(3).map(label) == ["exhausted:10", "failed:supersteps_exhausted", "status:failed"])

        // The limit is per call: a run call can lower it, and a resume gets a fresh budget.
        let lowered = try await counterWorkflow(limit: nil).run(0, options: RunOptions(maxSupersteps: 3))
        #expect(lowered.supersteps == 3)
        #expect(lowered.error?.code == .superstepsExhausted)
        let again = try await counterWorkflow(limit: 5).resume(from: lowered.checkpoint, options: RunOptions(maxSupersteps: 3))
        #expect(again.status == .idle)
        #expect(again.outputs(as: Int.self) == [5])
    }

    // 14
    @Test func fanOutWithAndWithoutSelectionAndSwitchCaseWithDefault() async throws {
        let all = try await WorkflowBuilder(name: "fan-out")
            .addExecutor(Relay(id: "src")).addExecutor(Sink(id: "x")).addExecutor(Sink(id: "y"))
            .addFanOut("src", to: ["x", "y"]).setStart("src").build().run("hi")
        #expect(all.outputs(as: String.self) == ["x:hi", "y:hi"])

        let selected = try WorkflowBuilder(name: "fan-out-select")
            .addExecutor(Relay(id: "src")).addExecutor(Sink(id: "x")).addExecutor(Sink(id: "y"))
            .addFanOut("src", to: ["x", "y"], selecting: String.self) { s, ids in s.hasPrefix("y") ? ["y"] : ids }
            .setStart("src").build()
        #expect(try await selected.run("yes").outputs(as: String.self) == ["y:yes"])
        #expect(try await selected.run("no").outputs(as: String.self) == ["x:no", "y:no"])

        let router = try WorkflowBuilder(name: "switch")
            .addExecutor(FunctionExecutor(id: "src") { h in
                h.on(Int.self) { n, ctx in try ctx.send(n) }
                h.sends(Int.self)
            })
            .addExecutor(Sink(id: "small")).addExecutor(Sink(id: "big")).addExecutor(Sink(id: "other"))
            .addSwitch("src", [
                .when(Int.self, to: "small") { $0 < 10 },
                .when(Int.self, to: "big") { $0 >= 100 },
                .when(Int.self, to: "small") { $0 < 50 },
                .default("other"),
            ])
            .setStart("src").build()
        #expect(try await router.run(3).outputs(as: String.self) == ["small:3"])
        #expect(try await router.run(30).outputs(as: String.self) == ["small:30"])
        #expect(try await router.run(300).outputs(as: String.self) == ["big:300"])
        #expect(try await router.run(70).outputs(as: String.self) == ["other:70"])
    }

    // 16
    @Test func falseConditionDeliversNothingAndEmitsADiagnostic() async throws {
        let wf = try WorkflowBuilder(name: "conditional")
            .addExecutor(FunctionExecutor(id: "src") { h in
                h.on(Int.self) { n, ctx in try ctx.send(n) }
                h.sends(Int.self)
            })
            .addExecutor(Sink(id: "dst"))
            .addEdge("src", "dst", when: Int.self) { $0 > 10 }
            .setStart("src").build()
        let recorder = EventRecorder()
        let result = try await wf.run(5, onEvent: recorder.sink)
        #expect(result.status == .idle)
        #expect(result.outputs.isEmpty)
        #expect(result.supersteps == 1)
        let undelivered = recorder.all.compactMap { if case .messageUndelivered(let u) = $0 { u } else { nil } }
        #expect(undelivered.count == 1)
        #expect(undelivered.first?.sourceID == "src")
        #expect(undelivered.first?.typeName == "Int")
        #expect(undelivered.first?.reason.contains("condition of edge src -> dst was false") == true)
        #expect(!recorder.all.map(label).contains("invoked:dst"))
        #expect(try await wf.run(11).outputs(as: String.self) == ["dst:11"])
    }

    @Test func messagesToUnknownTargetsAreDiagnosedNotDropped() async throws {
        let wf = try WorkflowBuilder(name: "targets")
            .addExecutor(FunctionExecutor(id: "src") { h in
                h.on(String.self) { s, ctx in try ctx.send(s, to: "nowhere"); try ctx.send(1) }
                h.sends(String.self); h.sends(Int.self)
            })
            .addExecutor(FunctionExecutor(id: "dst") { h in h.on(String.self) { _, _ in } })
            .addEdge("src", "dst").setStart("src").build()
        let events = try await collect(wf.runStreaming("x"))
        let reasons = events.compactMap { if case .messageUndelivered(let u) = $0 { u.reason } else { nil } }
        #expect(reasons.count == 2)
        #expect(reasons.contains("there is no executor 'nowhere'"))
        #expect(reasons.contains { $0.contains("no edge from 'src' leads to an executor that handles it") })
        #expect(statuses(events) == [.running, .idle])
        #expect(events.filter { if case .superstepStarted = $0 { true } else { false } }.count == 1)
    }

    // 17
    @Test func throwingExecutorFailsTheRunAndItsSuperstepWritesAreDiscarded() async throws {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let wf = try WorkflowBuilder(name: "fail")
            .addExecutor(FunctionExecutor(id: "first") { h in
                h.on(String.self) { s, ctx in ctx.setState("first", "kept"); try ctx.send(s) }
                h.sends(String.self)
            })
            .addExecutor(FunctionExecutor(id: "calm") { h in
                h.on(String.self) { _, ctx in ctx.setState("calm", "discarded too") }
            })
            .addExecutor(FunctionExecutor(id: "boom") { h in
                h.on(String.self) { _, ctx in ctx.setState("boom", "discarded"); throw Boom() }
            })
            .addFanOut("first", to: ["calm", "boom"]).setStart("first").build()
        let storage: any CheckpointStorage = InMemoryCheckpointStorage()
        let recorder = EventRecorder()
        let result = try await wf.run("go", options: RunOptions(checkpointStorage: storage), onEvent: recorder.sink)
        #expect(result.status == .failed)
        #expect(result.error?.code == .executorFailed)
        #expect(result.error?.message.contains("'boom' failed: boom") == true)
        let labels = recorder.all.map(label)
        let failedAt = try #require(labels.firstIndex(of: "failedExecutor:boom"))
        #expect(labels.suffix(2) == ["failed:executor_failed", "status:failed"])
        #expect(failedAt < labels.count - 2)
        #expect(!labels.contains("completed:2"))
        #expect(result.checkpoint.sharedStateKeys == ["first"])
        #expect(try result.checkpoint.sharedState("first", as: String.self) == "kept")
        #expect(try await storage.latest(runID: result.runID)?.sharedStateKeys == ["first"])
    }

    @Test func sharedStateWritesAreInvisibleToOthersUntilTheSuperstepEnds() async throws {
        let wf = try WorkflowBuilder(name: "isolation")
            .addExecutor(Relay(id: "fork"))
            .addExecutor(FunctionExecutor(id: "writer") { h in
                h.on(String.self) { _, ctx in
                    ctx.setState("k", "written")
                    try ctx.yieldOutput("writer sees \(try ctx.state("k", as: String.self) ?? "nothing")")
                    try ctx.send(1)
                }
                h.sends(Int.self); h.yields(String.self)
            })
            .addExecutor(FunctionExecutor(id: "reader") { h in
                h.on(String.self) { _, ctx in
                    try await Task.sleep(for: .milliseconds(20))
                    try ctx.yieldOutput("reader sees \(try ctx.state("k", as: String.self) ?? "nothing")")
                }
                h.on(Int.self) { _, ctx in try ctx.yieldOutput("later reader sees \(try ctx.state("k", as: String.self) ?? "nothing")") }
                h.yields(String.self)
            })
            .addFanOut("fork", to: ["writer", "reader"]).addEdge("writer", "reader").setStart("fork").build()
        let result = try await wf.run("go")
        #expect(result.outputs(as: String.self) == ["writer sees written", "reader sees nothing", "later reader sees written"])
    }

    // 18
    @Test func deliveriesToOneExecutorAreSerializedInSendOrderPerSource() async throws {
        let busy = Probe<Int>()
        let order = Probe<String>()
        let active = Probe<Int>()
        func source(_ id: String) -> FunctionExecutor {
            FunctionExecutor(id: id) { h in
                h.on(String.self) { _, ctx in for i in 0..<10 { try ctx.send(Tick(source: id, n: i)) } }
                h.sends(Tick.self)
            }
        }
        let wf = try WorkflowBuilder(name: "serial")
            .addExecutor(FunctionExecutor(id: "fork") { h in h.on(String.self) { s, ctx in try ctx.send(s) }; h.sends(String.self) })
            .addExecutor(source("a")).addExecutor(source("b"))
            .addExecutor(FunctionExecutor(id: "collector") { h in
                h.on(Tick.self) { t, _ in
                    active.append(1)
                    busy.append(active.all.count - order.all.count)
                    try await Task.sleep(for: .milliseconds(1))
                    order.append("\(t.source)\(t.n)")
                }
            })
            .addFanOut("fork", to: ["a", "b"]).addEdge("a", "collector").addEdge("b", "collector")
            .setStart("fork").build()
        let result = try await wf.run("go")
        #expect(result.status == .idle)
        #expect(busy.all.allSatisfy { $0 == 1 })
        #expect(order.all == (0..<10).map { "a\($0)" } + (0..<10).map { "b\($0)" })
    }

    // 19
    @Test func sendingOrYieldingAnUndeclaredTypeIsAnErrorAtTheCall() async throws {
        let codes = Probe<WorkflowError.Code>()
        let wf = try WorkflowBuilder(name: "undeclared").addExecutor(FunctionExecutor(id: "liar") { h in
            h.on(String.self) { _, ctx in
                do { try ctx.send(42) } catch let e as WorkflowError { codes.append(e.code) }
                do { try ctx.yieldOutput(42) } catch let e as WorkflowError { codes.append(e.code) }
                try ctx.yieldOutput("declared")
            }
            h.yields(String.self)
        }).setStart("liar").build()
        let result = try await wf.run("x")
        #expect(codes.all == [.undeclaredSend, .undeclaredYield])
        #expect(result.outputs(as: String.self) == ["declared"])
        #expect(result.outputs.count == 1)
    }

    // 20
    struct BuildCase: Sendable, CustomTestStringConvertible {
        let name: String
        let code: WorkflowError.Code
        let message: String
        let make: @Sendable () throws -> Workflow
        var testDescription: String { name }
    }

    static let buildCases: [BuildCase] = [
        BuildCase(name: "duplicate id", code: .duplicateExecutorID,
                  message: "executor id 'x' is used twice in workflow 'w'; executor ids must be unique") {
            try WorkflowBuilder(name: "w").addExecutor(Sink(id: "x")).addExecutor(Relay(id: "x")).setStart("x").build()
        },
        BuildCase(name: "duplicate edge", code: .duplicateEdge, message: "the edge a -> b is declared twice; remove one") {
            try WorkflowBuilder(name: "w").addExecutor(Relay(id: "a")).addExecutor(Sink(id: "b"))
                .addEdge("a", "b").addEdge("a", "b").setStart("a").build()
        },
        BuildCase(name: "missing start", code: .missingStart,
                  message: "workflow 'w' has no start executor; call setStart(_:) with the id of the executor that takes the run's input") {
            try WorkflowBuilder(name: "w").addExecutor(Sink(id: "a")).build()
        },
        BuildCase(name: "incompatible edge", code: .incompatibleEdge,
                  message: "edge 'direct a -> b' can deliver nothing: 'a' sends [Int] and 'b' handles [Bool]; declare a matching sends(_:) or handler") {
            try WorkflowBuilder(name: "w")
                .addExecutor(FunctionExecutor(id: "a") { h in h.on(String.self) { _, _ in }; h.sends(Int.self) })
                .addExecutor(FunctionExecutor(id: "b") { h in h.on(Bool.self) { _, _ in } })
                .addEdge("a", "b").setStart("a").build()
        },
        BuildCase(name: "unreachable executor", code: .unreachableExecutor,
                  message: "executor 'island' is unreachable from the start executor 'a'; connect it with an edge or remove it") {
            try WorkflowBuilder(name: "w").addExecutor(Relay(id: "a")).addExecutor(Sink(id: "island")).setStart("a").build()
        },
        BuildCase(name: "fan-in without list handler", code: .fanInWithoutListHandler,
                  message: "fan-in target 'agg' has no handler for a list of a type every source sends (a sends [String]; b sends [String]); add e.g. on([T].self)") {
            try WorkflowBuilder(name: "w").addExecutor(Relay(id: "f")).addExecutor(Relay(id: "a")).addExecutor(Relay(id: "b"))
                .addExecutor(Sink(id: "agg"))
                .addFanOut("f", to: ["a", "b"]).addFanIn(["a", "b"], to: "agg").setStart("f").build()
        },
        BuildCase(name: "switch without default", code: .switchDefault,
                  message: "the switch from 'a' has no default case; add .default(target) as its last case") {
            try WorkflowBuilder(name: "w").addExecutor(Relay(id: "a")).addExecutor(Sink(id: "b"))
                .addSwitch("a", [.when(String.self, to: "b") { $0.isEmpty }]).setStart("a").build()
        },
        BuildCase(name: "switch with two defaults", code: .switchDefault,
                  message: "the switch from 'a' has 2 default cases; keep exactly one") {
            try WorkflowBuilder(name: "w").addExecutor(Relay(id: "a")).addExecutor(Sink(id: "b")).addExecutor(Sink(id: "c"))
                .addSwitch("a", [.default("b"), .default("c")]).setStart("a").build()
        },
    ]

    @Test(arguments: buildCases)
    func buildErrorsNameTheProblem(_ c: BuildCase) {
        #expect { try c.make() } throws: { error in
            guard let e = error as? WorkflowError else { return false }
            #expect(e.code == c.code)
            #expect(e.message == c.message)
            return true
        }
    }

    @Test func runInputMustBeAcceptedByTheStartExecutor() async throws {
        await #expect { try await SeedExamples.approvalWorkflow().run(5) } throws: {
            ($0 as? WorkflowError)?.code == .inputNotAccepted
        }
    }

    @Test func dispatchPrefersTheExactTypeThenTheFirstAcceptingHandler() async throws {
        class Animal: WorkflowPayload, @unchecked Sendable { // @unchecked: immutable test class
            class var typeName: String { "Animal" }
            init() {}
        }
        final class Dog: Animal, @unchecked Sendable { // @unchecked: immutable test class
            override class var typeName: String { "Dog" }
        }
        final class Cat: Animal, @unchecked Sendable { // @unchecked: immutable test class
            override class var typeName: String { "Cat" }
        }
        let wf = try WorkflowBuilder(name: "dispatch")
            .addExecutor(FunctionExecutor(id: "src") { h in
                h.on(String.self) { s, ctx in try ctx.send(s == "dog" ? Dog() as Animal : Cat() as Animal) }
                h.sends(Animal.self)
            })
            .addExecutor(FunctionExecutor(id: "vet") { h in
                h.on(Animal.self) { _, ctx in try ctx.yieldOutput("animal handler") }
                h.on(Dog.self) { _, ctx in try ctx.yieldOutput("dog handler") }
                h.yields(String.self)
            })
            .addEdge("src", "vet").setStart("src").build()
        #expect(try await wf.run("dog").outputs(as: String.self) == ["dog handler"])
        #expect(try await wf.run("cat").outputs(as: String.self) == ["animal handler"])
    }

    @Test func executorEventsArriveAsCustomEventsBetweenFrameworkEvents() async throws {
        let wf = try WorkflowBuilder(name: "events").addExecutor(FunctionExecutor(id: "talker") { h in
            h.on(String.self) { s, ctx in ctx.addEvent("progress", s.count); ctx.addEvent("halfway") }
        }).setStart("talker").build()
        let events = try await collect(wf.runStreaming("four"))
        #expect(events.map(label) == [
            "started", "status:running", "superstep:1", "invoked:talker", "custom:progress", "custom:halfway",
            "done:talker", "completed:1", "status:idle",
        ])
        let custom = events.compactMap { if case .custom(let c) = $0 { c } else { nil } }
        #expect(custom.first?.value(as: Int.self) == 4)
        #expect(custom.first?.executorID == "talker")
    }

    // 23
    @Test func twoRunsOfOneDefinitionDoNotShareState() async throws {
        let wf = try SeedExamples.guessingWorkflow(targetNumber: 42)
        async let a = wf.run(10)
        async let b = wf.run(42)
        let (ra, rb) = try await (a, b)
        #expect(rb.outputs(as: String.self) == ["42 found in 1 tries!"])
        #expect(ra.runID != rb.runID)
        let ra2 = try await wf.resume(from: ra.checkpoint, responses: [ra.pendingRequests[0].id: 42])
        #expect(ra2.outputs(as: String.self) == ["42 found in 2 tries!"])
        // And the same definition runs again from scratch.
        #expect(try await wf.run(42).outputs(as: String.self) == ["42 found in 1 tries!"])
    }
}
