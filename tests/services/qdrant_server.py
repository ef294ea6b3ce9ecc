"""A Qdrant REST test server around the real Qdrant engine (qdrant-edge-py), for the data plane's
vector-store tests. It implements only the calls callfunnel uses, validates every request body
against Qdrant's published OpenAPI schema (the generated pydantic models of qdrant-client) and
answers in Qdrant's response shape, also built from those models.

    python qdrant_server.py PORT DATADIR [API_KEY]

Routes: GET /collections/{c}, GET /collections/{c}/exists, PUT /collections/{c},
DELETE /collections/{c}, PUT /collections/{c}/index, PUT /collections/{c}/points,
POST /collections/{c}/points/{query,delete,count}. Anything else answers 404.
"""

import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pydantic
import qdrant_edge as qe
from qdrant_client.http import models as m

DISTANCE = {"Cosine": qe.Distance.Cosine, "Dot": qe.Distance.Dot, "Euclid": qe.Distance.Euclid}
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Collections:
    """name -> (shard, meta); meta keeps what the REST API reports (size, distance, indexes)."""

    def __init__(self, root):
        self.root = root
        self.lock = threading.Lock()
        self.cols = {}
        os.makedirs(root, exist_ok=True)
        for name in os.listdir(root):
            meta_path = os.path.join(root, name, "meta.json")
            if os.path.exists(meta_path):
                with open(meta_path) as f:
                    meta = json.load(f)
                self.cols[name] = (qe.EdgeShard.load(os.path.join(root, name, "shard")), meta)

    def get(self, name):
        if name not in self.cols:
            raise ApiError(404, f"Not found: Collection `{name}` doesn't exist!")
        return self.cols[name]

    def save_meta(self, name, meta):
        with open(os.path.join(self.root, name, "meta.json"), "w") as f:
            json.dump(meta, f)

    def create(self, name, body: m.CreateCollection):
        if not NAME_RE.match(name):
            raise ApiError(422, f"Validation error in path parameters: collection name `{name}`")
        if name in self.cols:
            raise ApiError(409, f"Wrong input: Collection `{name}` already exists!")
        if not isinstance(body.vectors, m.VectorParams):
            raise ApiError(400, "test server: only one unnamed dense vector per collection is supported")
        size, dist = body.vectors.size, body.vectors.distance.value
        shard = qe.EdgeShard.create(os.path.join(self.root, name, "shard"),
                                    qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=size, distance=DISTANCE[dist])))
        meta = {"size": size, "distance": dist, "indexes": {}}
        self.save_meta(name, meta)
        self.cols[name] = (shard, meta)

    def delete(self, name):
        if name not in self.cols:
            return False
        shard, _ = self.cols.pop(name)
        shard.close()
        shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return True


def to_filter(f: m.Filter):
    def conds(items):
        if items is None:
            return None
        items = items if isinstance(items, list) else [items]
        return [to_condition(c) for c in items]

    if f.min_should is not None:
        raise ApiError(400, "test server: min_should is not supported")
    return qe.Filter(must=conds(f.must), should=conds(f.should), must_not=conds(f.must_not))


def to_condition(c):
    if isinstance(c, m.Filter):
        return to_filter(c)
    if isinstance(c, m.FieldCondition):
        if isinstance(c.match, m.MatchValue):
            return qe.FieldCondition(c.key, match=qe.MatchValue(c.match.value))
        if isinstance(c.match, m.MatchAny):
            return qe.FieldCondition(c.key, match=qe.MatchAny(list(c.match.any)))
    if isinstance(c, m.HasIdCondition):
        return qe.HasIdCondition([str(i) if not isinstance(i, int) else i for i in c.has_id])
    raise ApiError(400, f"test server: condition {type(c).__name__} is not supported")


def vector_of(point_vector, size):
    if not isinstance(point_vector, list) or not all(isinstance(x, (int, float)) for x in point_vector):
        raise ApiError(400, "test server: only unnamed dense vectors are supported")
    if len(point_vector) != size:
        raise ApiError(400, f"Wrong input: Vector dimension error: expected dim: {size}, got {len(point_vector)}")
    return [float(x) for x in point_vector]


def point_id(i):
    """Qdrant ids are unsigned integers or UUIDs (the schema only says int | str)."""
    if isinstance(i, int) and i >= 0:
        return i
    try:
        return str(uuid.UUID(str(i)))
    except ValueError:
        raise ApiError(400, f"Format error in JSON body: value {i} is not a valid point ID, "
                            "valid values are either an unsigned integer or a UUID")


def update_result(op_id=0):
    return m.UpdateResult(operation_id=op_id, status=m.UpdateStatus.COMPLETED)


def collection_info(shard, meta):
    info = shard.info()
    schema = {}
    for field, params in meta["indexes"].items():
        schema[field] = m.PayloadIndexInfo(data_type=m.PayloadSchemaType.KEYWORD, params=params, points=0)
    return m.CollectionInfo(
        status=m.CollectionStatus.GREEN, optimizer_status="ok", segments_count=info.segments_count,
        points_count=info.points_count, indexed_vectors_count=info.indexed_vectors_count,
        config=m.CollectionConfig(
            params=m.CollectionParams(vectors=m.VectorParams(size=meta["size"], distance=meta["distance"])),
            hnsw_config=m.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            optimizer_config=m.OptimizersConfig(default_segment_number=0, flush_interval_sec=5)),
        payload_schema=schema)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Collections = None
    api_key = None

    def log_message(self, fmt, *args):
        sys.stderr.write("qdrant-test: " + (fmt % args) + "\n")

    def reply(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self, model):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return pydantic.TypeAdapter(model).validate_json(raw or b"{}")
        except pydantic.ValidationError as e:
            raise ApiError(400, f"Format error in JSON body: {e.errors(include_url=False)[0]}")

    def handle_any(self, method):
        start = time.monotonic()
        try:
            if self.api_key is not None and self.headers.get("api-key") != self.api_key:
                raise ApiError(401, "Must provide an API key or an Authorization bearer token")
            path = urlparse(self.path).path.strip("/").split("/")
            if len(path) < 2 or path[0] != "collections":
                raise ApiError(404, "Not found")
            with self.store.lock:
                result = self.route(method, path[1], path[2:])
            self.reply(200, {"result": result, "status": "ok", "time": time.monotonic() - start})
        except ApiError as e:
            if e.code >= 500 or e.code == 400:
                self.log_message("%s", str(e))
            self.reply(e.code, {"status": {"error": str(e)}, "time": time.monotonic() - start})
        except Exception as e:  # the engine refused: report it as Qdrant does, as a service error
            self.log_message("engine error: %r", e)
            self.reply(500, {"status": {"error": f"Service internal error: {e}"}, "time": time.monotonic() - start})

    def route(self, method, name, rest):
        s = self.store
        dump = lambda x: x.model_dump(mode="json", exclude_none=True)  # noqa: E731
        if rest == [] and method == "GET":
            return dump(collection_info(*s.get(name)))
        if rest == ["exists"] and method == "GET":
            return dump(m.CollectionExistence(exists=name in s.cols))
        if rest == [] and method == "PUT":
            s.create(name, self.body(m.CreateCollection))
            return True
        if rest == [] and method == "DELETE":
            return s.delete(name)
        if rest == ["index"] and method == "PUT":
            req = self.body(m.CreateFieldIndex)
            shard, meta = s.get(name)
            schema = req.field_schema
            if isinstance(schema, m.KeywordIndexParams):
                params = qe.KeywordIndexParams(is_tenant=schema.is_tenant, on_disk=schema.on_disk)
            elif schema in (m.PayloadSchemaType.KEYWORD, "keyword"):
                params = qe.PayloadSchemaType.Keyword
            else:
                raise ApiError(400, "test server: only keyword payload indexes are supported")
            shard.update(qe.UpdateOperation.create_field_index(req.field_name, params))
            meta["indexes"][req.field_name] = dump(schema) if isinstance(schema, m.KeywordIndexParams) else {"type": "keyword"}
            s.save_meta(name, meta)
            return dump(update_result())
        if rest == ["points"] and method == "PUT":
            req = self.body(m.PointInsertOperations)
            shard, meta = s.get(name)
            if not isinstance(req, m.PointsList):
                raise ApiError(400, "test server: only the points list form is supported")
            pts = [qe.Point(point_id(p.id), vector_of(p.vector, meta["size"]), p.payload or {}) for p in req.points]
            shard.update(qe.UpdateOperation.upsert_points(pts))
            shard.flush()
            return dump(update_result())
        if rest == ["points", "query"] and method == "POST":
            return dump(self.query(name, self.body(m.QueryRequest)))
        if rest == ["points", "delete"] and method == "POST":
            req = self.body(m.PointsSelector)
            shard, _ = s.get(name)
            if isinstance(req, m.FilterSelector):
                shard.update(qe.UpdateOperation.delete_points_by_filter(to_filter(req.filter)))
            else:
                shard.update(qe.UpdateOperation.delete_points([point_id(i) for i in req.points]))
            shard.flush()
            return dump(update_result())
        if rest == ["points", "count"] and method == "POST":
            req = self.body(m.CountRequest)
            shard, _ = s.get(name)
            f = to_filter(req.filter) if req.filter else None
            return dump(m.CountResult(count=shard.count(qe.CountRequest(exact=True, filter=f))))
        raise ApiError(404, "Not found")

    def query(self, name, req: m.QueryRequest):
        shard, meta = self.store.get(name)
        q = req.query
        if isinstance(q, m.NearestQuery):
            q = q.nearest
        if req.prefetch or req.using or q is None:
            raise ApiError(400, "test server: only a plain nearest query is supported")
        vec = vector_of(q, meta["size"])
        with_payload = req.with_payload if isinstance(req.with_payload, bool) else False
        points = shard.query(qe.QueryRequest(
            limit=req.limit or 10, offset=req.offset, query=qe.Query.Nearest(vec),
            filter=to_filter(req.filter) if req.filter else None, with_payload=with_payload,
            with_vector=bool(req.with_vector) if isinstance(req.with_vector, bool) else False,
            score_threshold=req.score_threshold))
        return m.QueryResponse(points=[
            m.ScoredPoint(id=str(p.id) if not isinstance(p.id, int) else p.id, version=p.version,
                          score=p.score, payload=p.payload if with_payload else None,
                          vector=p.vector if req.with_vector is True else None) for p in points])

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: qdrant_server.py PORT DATADIR [API_KEY]")
    Handler.store = Collections(sys.argv[2])
    Handler.api_key = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("QDRANT_TEST_API_KEY")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"qdrant test server on 127.0.0.1:{sys.argv[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
