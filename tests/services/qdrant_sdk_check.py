"""Drives the Qdrant test server with the official qdrant-client SDK: if the SDK (which parses
every answer with Qdrant's OpenAPI models) accepts what the server says and gets the expected
results, the server speaks Qdrant's REST API faithfully for the calls we use.

    python qdrant_sdk_check.py URL [API_KEY]     exit 0 and prints "sdk check ok" on success
"""

import sys
import uuid
import warnings

from qdrant_client import QdrantClient
from qdrant_client.http import models as m
from qdrant_client.http.exceptions import UnexpectedResponse

warnings.simplefilter("ignore")
url = sys.argv[1]
key = sys.argv[2] if len(sys.argv) > 2 else None
c = QdrantClient(url=url, api_key=key, prefer_grpc=False, check_compatibility=False)
name = "sdk_check_" + uuid.uuid4().hex[:8]
assert not c.collection_exists(name)
c.create_collection(name, vectors_config=m.VectorParams(size=3, distance=m.Distance.COSINE))
assert c.collection_exists(name)
c.create_payload_index(name, "tenant_id", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True))
info = c.get_collection(name)
assert info.config.params.vectors.size == 3, info
assert "tenant_id" in info.payload_schema, info.payload_schema
ids = [str(uuid.uuid4()) for _ in range(3)]
c.upsert(name, [
    m.PointStruct(id=ids[0], vector=[1, 0, 0], payload={"tenant_id": "a", "doc_id": "d1"}),
    m.PointStruct(id=ids[1], vector=[0.9, 0.1, 0], payload={"tenant_id": "a", "doc_id": "d2"}),
    m.PointStruct(id=ids[2], vector=[1, 0, 0], payload={"tenant_id": "b", "doc_id": "d1"}),
], wait=True)
only_a = m.Filter(must=[m.FieldCondition(key="tenant_id", match=m.MatchValue(value="a"))])
hits = c.query_points(name, query=[1, 0, 0], query_filter=only_a, limit=5, with_payload=True).points
assert [h.id for h in hits] == ids[:2], hits
assert hits[0].score > hits[1].score and abs(hits[0].score - 1.0) < 1e-4, hits
assert c.count(name, count_filter=only_a, exact=True).count == 2
c.delete(name, points_selector=m.FilterSelector(filter=m.Filter(must=[
    m.FieldCondition(key="tenant_id", match=m.MatchValue(value="a")),
    m.FieldCondition(key="doc_id", match=m.MatchValue(value="d1"))])), wait=True)
assert c.count(name, exact=True).count == 2
try:
    c.upsert(name, [m.PointStruct(id=str(uuid.uuid4()), vector=[1, 0], payload={})])
    raise SystemExit("a wrong dimension was accepted")
except UnexpectedResponse as e:
    assert e.status_code == 400, e
try:
    c.create_collection(name, vectors_config=m.VectorParams(size=3, distance=m.Distance.COSINE))
    raise SystemExit("a duplicate collection was accepted")
except UnexpectedResponse as e:
    assert e.status_code == 409, e
assert c.delete_collection(name)
assert not c.collection_exists(name)
print("sdk check ok")
