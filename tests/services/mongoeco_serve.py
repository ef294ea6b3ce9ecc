import asyncio, sys, signal
from bson.int64 import Int64
import mongoeco.wire.proxy as proxy
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer
from mongoeco.engines.sqlite import SQLiteEngine
# Work-around: mongoeco 4.11.0 encodes cursor.id as BSON int32; MongoDB (and the Rust driver) require int64.
_orig = proxy.encode_op_msg_response
def _fix(doc):
    cur = doc.get("cursor") if isinstance(doc, dict) else None
    if isinstance(cur, dict) and isinstance(cur.get("id"), int) and not isinstance(cur.get("id"), Int64):
        cur["id"] = Int64(cur["id"])
    if isinstance(doc, dict) and doc.get("ok") in (0, 0.0) and "code" not in doc:
        doc["code"] = 8; doc.setdefault("codeName", "UnknownError")  # Rust driver requires `code` on errors
    return doc
proxy.encode_op_msg_response = lambda document, **kw: _orig(_fix(document), **kw)
from mongoeco.core.bson_scalars import BsonInt64
_orig_dec = proxy.decode_op_msg
def _dec(header, payload):
    req = _orig_dec(header, payload); b = req.body
    if isinstance(b.get("getMore"), BsonInt64): b["getMore"] = b["getMore"].value
    if isinstance(b.get("cursors"), list): b["cursors"] = [c.value if isinstance(c, BsonInt64) else c for c in b["cursors"]]
    # The Rust driver sends these as int64 too; mongoeco expects plain ints.
    for k in ("limit", "batchSize", "skip", "maxTimeMS"):
        if isinstance(b.get(k), BsonInt64): b[k] = b[k].value
    return req
proxy.decode_op_msg = _dec
async def main():
    port = int(sys.argv[1]); path = sys.argv[2] if len(sys.argv) > 2 else ":memory:"
    srv = AsyncMongoEcoProxyServer(engine=SQLiteEngine(path=path), host="127.0.0.1", port=port)
    addr = await srv.start(); print("listening", addr.uri, flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT): asyncio.get_running_loop().add_signal_handler(s, stop.set)
    await stop.wait(); await srv.close()
asyncio.run(main())
