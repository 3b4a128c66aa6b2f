import Foundation

/// One HTTP request as the chat client sends it.
public struct HTTPRequest: Sendable {
    public var url: String
    public var method: String
    /// Header name/value pairs in order. May contain secrets: never log them.
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// Seconds to establish the connection.
    public var connectTimeout: Double
    /// Seconds for the whole transfer.
    public var timeout: Double

    public init(url: String, method: String = "POST", headers: [(name: String, value: String)] = [],
                body: Data = Data(), connectTimeout: Double, timeout: Double) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }
}

/// The provider's answer: status, headers (names lower-cased) and body.
public struct HTTPResponse: Sendable, Hashable {
    public var status: Int
    /// Header values by lower-cased name (the last value wins).
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why a transfer produced no HTTP response.
public struct HTTPTransportFailure: Error, Sendable, Hashable {
    /// The kind of failure, which decides the user-facing error and whether to retry.
    public enum Kind: Sendable, Hashable {
        /// Nothing listens there, or the name does not resolve.
        case connectionFailed
        /// The connection was not established within the connect timeout.
        case connectTimeout
        /// The transfer exceeded the total timeout.
        case timeout
        /// The task was cancelled.
        case cancelled
        /// Any other failure (TLS, protocol, response too large…).
        case other
    }

    public var kind: Kind
    /// libcurl's error text (or a description); contains no header values.
    public var detail: String

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// Sends one HTTP request. ``CurlHTTPTransport`` is the real one.
public protocol HTTPTransport: Sendable {
    /// Performs the request; throws ``HTTPTransportFailure`` when no response arrived.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

extension HTTPRequest: CustomStringConvertible, CustomDebugStringConvertible {
    /// Method, URL and header names only: header values may hold the API key.
    public var description: String {
        "\(method) \(url) headers=[\(headers.map(\.name).joined(separator: ", "))] body=\(body.count) bytes"
    }

    public var debugDescription: String { description }
}
