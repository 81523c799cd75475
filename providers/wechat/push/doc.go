// Package push is WeChat's mini-program message push protocol, both sides:
// checking and opening a push as herald receiver does ([Verifier]), and
// making one as WeChat does ([Sealer], used by the sandbox and tests).
//
// A push is a POST to the app's "message push" URL with signature,
// timestamp and nonce in the query. In plaintext mode the body is the
// message, XML or JSON. In compatible and safe mode the query adds
// encrypt_type=aes and msg_signature, and the body carries Encrypt: the
// message AES-256-CBC encrypted under the app's EncodingAESKey, framed as
// random(16) | length(4, big-endian) | message | appid and padded with
// PKCS#7 to 32 bytes. signature = sha1 of the lexically sorted token,
// timestamp and nonce; msg_signature adds Encrypt to the sort.
//
// [Parse] reads every shape WeChat is known to send: XML with items under
// <SubscribeMsgPopupEvent><List> (and the matching wrappers of the other
// events), JSON with a top-level List that is an object for one item and an
// array for several, JSON with the items under a wrapper (an array, an
// object, or {"List": ...}), and CreateTime, MsgID, ErrorCode and
// PopupScene as numbers or strings. MsgID is read as an int64 literal,
// never through a float.
//
// # Invariants
//
//   - Nothing is read before it is authenticated as far as the mode allows:
//     [Verifier.Open] checks signature and the timestamp (at most 5 minutes
//     off) first, then in AES mode msg_signature over Encrypt, then decrypts
//     and checks the trailing appid, and only then parses the message. A
//     ciphertext is never decrypted unless its msg_signature holds, so the
//     padding check is no oracle for anyone without the token.
//   - An app with an EncodingAESKey accepts encrypted pushes only, and one
//     without accepts plaintext pushes only: a configured key cannot be
//     bypassed by sending plaintext. In plaintext mode the body itself is
//     not authenticated (signature covers the query only).
//   - Input is bounded: [Parse] refuses more than [MaxItems] items and
//     fields longer than [MaxFieldLen] bytes; the caller bounds the body.
//   - Errors wrap one of the package's sentinels ([ErrSignature],
//     [ErrMsgSignature], [ErrStale], [ErrMode], [ErrDecrypt], [ErrAppID],
//     [ErrMalformed]) and never quote a token or a key.
//
// The package depends on the standard library only.
package push
