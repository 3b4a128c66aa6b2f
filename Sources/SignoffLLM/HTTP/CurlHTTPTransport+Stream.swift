import Foundation

/// One piece of a streamed HTTP response.
public enum HTTPStreamEvent: Sendable, Hashable {
    /// The status line and headers (names lower-cased), once, before any data.
    case head(status: Int, headers: [String: String])
    /// A chunk of the body, as it arrives.
    case data(Data)
}

/// A transport that can hand the body over as it arrives (for server-sent events).
public protocol HTTPStreamingTransport: HTTPTransport {
    /// Starts the request; the stream yields the head then body chunks, and finishes (or throws
    /// ``HTTPTransportFailure``) when the transfer ends. Ending the iteration aborts the transfer.
    func stream(_ request: HTTPRequest) -> AsyncThrowingStream<HTTPStreamEvent, any Error>
}

extension CurlHTTPTransport: HTTPStreamingTransport {
    private static let streamQueue = DispatchQueue(label: "signoff.llm.curl.stream", qos: .userInitiated, attributes: .concurrent)

    public func stream(_ request: HTTPRequest) -> AsyncThrowingStream<HTTPStreamEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<HTTPStreamEvent, any Error>.makeStream(bufferingPolicy: .unbounded)
        let flag = CancelFlag()
        let limit = maxResponseBytes
        continuation.onTermination = { _ in flag.cancel() }
        Self.streamQueue.async {
            do {
                _ = try performTransfer(request, cancel: flag, limit: limit) { event in
                    if flag.isCancelled { return false }
                    if case .terminated = continuation.yield(event) { return false }
                    return true
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }
}
