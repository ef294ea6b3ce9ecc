"""The official `voyageai` SDK against our embeddings simulator."""
import voyageai

from common import KEY, base_url, check

vo = voyageai.Client(api_key=KEY, base_url=base_url() + "/v1", max_retries=0)
docs = ["We are open weekdays from 8 am to 6 pm.", "Parking is behind the building.", "Saturday hours are 9 to 1."]
r = vo.embed(docs, model="voyage-3.5", input_type="document", output_dimension=512)
check(len(r.embeddings) == 3 and all(len(e) == 512 for e in r.embeddings), "three 512-d embeddings")
check(r.total_tokens > 0, f"usage: {r.total_tokens}")
q = vo.embed(["when are you open on saturday"], model="voyage-3.5", input_type="query", output_dimension=512).embeddings[0]
scores = [sum(a * b for a, b in zip(q, d)) for d in r.embeddings]
check(scores.index(max(scores)) in (0, 2), f"the query matches an hours document: {scores}")
try:
    vo.embed(["x"] * 1001, model="voyage-3.5")
    raise AssertionError("1001 inputs must be refused")
except voyageai.error.VoyageError as e:
    check("1000" in str(e), str(e))
try:
    voyageai.Client(api_key="wrong", base_url=base_url() + "/v1", max_retries=0).embed(["x"], model="voyage-3.5")
    raise AssertionError("a bad key must fail")
except voyageai.error.AuthenticationError:
    pass
print("voyageai SDK: ok")
