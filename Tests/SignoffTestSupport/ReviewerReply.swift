import Foundation

/// A reviewer's plain-text reply to a request mail, as a mail client writes one: To the request's
/// Reply-To address (which carries the token), In-Reply-To and References naming the request, the
/// decision above "On …, Signoff wrote:" and the first lines of the request quoted with `> `.
/// The product tests and the latency benchmark answer requests with it.
public enum ReviewerReply {
    public static func text(to mail: String, from reviewer: String, body decision: String) -> String {
        func header(_ name: String) -> String {
            for line in mail.components(separatedBy: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ":") {
                return String(line.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
            }
            return ""
        }
        let quoted = mail.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\n")
            .split(separator: "\n").prefix(8).map { "> " + $0 }.joined(separator: "\r\n")
        return """
            From: Reviewer <\(reviewer)>\r
            To: \(header("Reply-To"))\r
            Subject: Re: \(header("Subject"))\r
            Date: Sat, 21 Nov 2026 07:00:00 +0000\r
            Message-ID: <reply-\(UUID().uuidString)@example.org>\r
            In-Reply-To: \(header("Message-ID"))\r
            References: \(header("Message-ID"))\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(decision)\r
            \r
            On Sat, 21 Nov 2026, Signoff <signoff@example.org> wrote:\r
            \(quoted)\r

            """
    }
}
