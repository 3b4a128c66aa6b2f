import SignoffEngine

/// Asks a human to approve an operation; outputs the verdict (seed: `ApprovalGate`).
public struct ApprovalGate: Executor {
    public let id = "approval_gate"
    public init() {}

    public func declare(_ h: inout ExecutorHandlers) {
        h.on(String.self) { msg, ctx in
            try ctx.requestInfo("Approve processing of: \(msg)?", responseType: Bool.self, requestID: "approve")
        }
        h.onResponse(to: String.self, Bool.self) { originalRequest, response, ctx in
            if response {
                try ctx.yieldOutput("Approved: \(originalRequest)")
            } else {
                try ctx.yieldOutput("Processing rejected by user.")
            }
        }
        h.yields(String.self)
    }
}

extension SeedExamples {
    /// `Workflow(executors=[ApprovalGate()])`: input the operation as a `String`.
    public static func approvalWorkflow() throws -> Workflow {
        try WorkflowBuilder(name: "approval-gate").addExecutor(ApprovalGate()).setStart("approval_gate").build()
    }
}
