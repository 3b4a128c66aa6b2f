import Foundation

/// An error the engine reports: a stable code and a message that names the problem and the fix.
///
/// Build errors come from `WorkflowBuilder.build()`; call errors (an undeclared send, a
/// `requestInfo` without a response handler) are thrown at the call; resume and restore errors are
/// thrown before anything changes; a failed run carries one in `RunResult.error`.
public struct WorkflowError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. Stable: hosts may switch on it.
    public struct Code: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        // Build errors.
        public static let duplicateExecutorID = Code(rawValue: "duplicate_executor_id")
        public static let duplicateEdge = Code(rawValue: "duplicate_edge")
        public static let missingStart = Code(rawValue: "missing_start")
        public static let unknownExecutor = Code(rawValue: "unknown_executor")
        public static let incompatibleEdge = Code(rawValue: "incompatible_edge")
        public static let unreachableExecutor = Code(rawValue: "unreachable_executor")
        public static let fanInWithoutListHandler = Code(rawValue: "fan_in_without_list_handler")
        public static let switchDefault = Code(rawValue: "switch_default")
        public static let invalidEdge = Code(rawValue: "invalid_edge")
        public static let duplicateResponseHandler = Code(rawValue: "duplicate_response_handler")
        public static let duplicateTypeName = Code(rawValue: "duplicate_type_name")
        // Call errors.
        public static let inputNotAccepted = Code(rawValue: "input_not_accepted")
        public static let undeclaredSend = Code(rawValue: "undeclared_send")
        public static let undeclaredYield = Code(rawValue: "undeclared_yield")
        public static let noResponseHandler = Code(rawValue: "no_response_handler")
        public static let duplicateRequestID = Code(rawValue: "duplicate_request_id")
        public static let stateTypeMismatch = Code(rawValue: "state_type_mismatch")
        // Resume errors.
        public static let unknownRequest = Code(rawValue: "unknown_request")
        public static let alreadyAnswered = Code(rawValue: "already_answered")
        public static let wrongResponseType = Code(rawValue: "wrong_response_type")
        // Run failures.
        public static let executorFailed = Code(rawValue: "executor_failed")
        public static let superstepsExhausted = Code(rawValue: "supersteps_exhausted")
        public static let requestCancelled = Code(rawValue: "request_cancelled")
        public static let executorMismatch = Code(rawValue: "executor_mismatch")
        // Checkpoints.
        public static let unknownTypeName = Code(rawValue: "unknown_type_name")
        public static let graphChanged = Code(rawValue: "graph_changed")
        public static let unsupportedCheckpointVersion = Code(rawValue: "unsupported_checkpoint_version")
        public static let checkpointEncoding = Code(rawValue: "checkpoint_encoding")
        public static let checkpointNotFound = Code(rawValue: "checkpoint_not_found")
        public static let storageFailed = Code(rawValue: "storage_failed")
        public static let workflowMismatch = Code(rawValue: "workflow_mismatch")
        public static let agentInput = Code(rawValue: "agent_input")
        public static let missingDependency = Code(rawValue: "missing_dependency")
    }

    /// What kind of problem this is.
    public var code: Code
    /// What happened and what to do about it.
    public var message: String

    /// Creates an error with a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
