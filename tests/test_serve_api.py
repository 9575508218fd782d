"""serve.py's JSON API on the tiny untrained model (FastAPI's test client, in-process): the
contract, feedback, an uploaded photo with a box, and every refusal as a 4xx naming the field."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from tf_partfash.attributes import SPECIAL_ATTRIBUTES, attribute
from tf_partfash.search.session import SearchRequest, search

pytest.importorskip('fastapi', reason="serve.py's dependencies: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope='module')
def served(untrained_run):
  from tf_partfash.search.session import open_catalogue
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.serving.app import create_app
  from tf_partfash.serving.service import Limits, SearchService
  catalogue = open_catalogue(TrainedRun.open(untrained_run.workdir, progress=False))
  service = SearchService(catalogue, Limits(upload_bytes=200_000, image_pixels=2_000_000))
  client = TestClient(create_app(service), raise_server_exceptions=False)
  return client, untrained_run, service


def _known_values(run, *names):
  """name=value settings of values the training split has (so they have prototypes)."""
  return {a: attribute(a).values[int(np.argmax(run.prototypes.counts[a]))] for a in names}


def test_health_and_attributes(served):
  client, run, _ = served
  health = client.get('/api/health').json()
  assert health['status'] == 'ok' and health['method'] == 'partnet'
  assert health['gallery_size'] == len(run.gallery)
  assert 0 < health['memory']['rss_gb'] <= health['memory']['peak_rss_gb']
  vocab = client.get('/api/attributes').json()
  assert list(vocab['special']) == list(SPECIAL_ATTRIBUTES)
  assert vocab['special']['sleevelen'] == list(attribute('sleevelen').values)
  assert 'category' in vocab['general']


def test_a_search_answers_what_search_py_answers(served):
  client, run, _ = served
  wanted = _known_values(run, 'sleevelen', 'color')
  body = {'query': str(run.gallery.paths[0]), 'set': wanted, 'top_k': 5}
  got = client.post('/api/search', json=body)
  assert got.status_code == 200, got.text
  got = got.json()
  cli = search(SearchRequest(run.workdir, str(run.gallery.paths[0]),
                             [f'{a}={v}' for a, v in wanted.items()], top_k=5))
  assert [r['row'] for r in got['results']] == [r['row'] for r in cli['results']]
  np.testing.assert_allclose([r['distance'] for r in got['results']],
                             [r['distance'] for r in cli['results']], rtol=1e-6)
  first = got['results'][0]
  assert set(first) >= {'rank', 'row', 'path', 'distance', 'predicted', 'match', 'image'}
  assert first['image'] == f'/api/images/{first["row"]}' and first['rank'] == 1
  assert got['query']['row'] == 0 and set(got['query']['predicted']) == set(SPECIAL_ATTRIBUTES)
  assert got['set'] == wanted
  # By row number too, and a top_k above the gallery returns the whole gallery but the query.
  everything = client.post('/api/search', json={'query': 0, 'top_k': 10**6}).json()
  assert len(everything['results']) == len(run.gallery) - 1


def test_feedback_applies_eq_5_6_as_search_py_does(served):
  client, run, _ = served
  wanted = _known_values(run, 'color')
  got = client.post('/api/search', json={'query': '0', 'set': wanted, 'feedback': ['3', '5'],
                                         'top_k': 4}).json()
  cli = search(SearchRequest(run.workdir, '0', [f'color={wanted["color"]}'], ('3', '5'),
                             top_k=4))
  assert [r['row'] for r in got['results']] == [r['row'] for r in cli['feedback']['results']]
  assert [r['row'] for r in got['before_feedback']] == [r['row'] for r in cli['results']]
  assert got['feedback']['picked'] == [3, 5]
  assert got['feedback']['weights'] == pytest.approx(cli['feedback']['weights'])


def test_category_restricts_the_results_to_that_predicted_category(served):
  client, run, service = served
  category = int(np.bincount(run.gallery.predicted('category')).argmax())
  name = attribute('category').values[category]
  got = client.post('/api/search', json={'query': 1, 'category': name, 'top_k': 3}).json()
  assert got['category'] == name and got['results']
  assert all(run.gallery.predicted('category')[r['row']] == category for r in got['results'])


def _photo(size=(120, 180), mode='RGB', fmt='PNG') -> bytes:
  out = io.BytesIO()
  Image.new(mode, size, (200, 30, 30) if mode == 'RGB' else (200, 30, 30, 255)).save(out, fmt)
  return out.getvalue()


def test_an_uploaded_photo_cropped_to_a_box_is_the_query(served):
  client, run, _ = served
  file = run.gallery.file(2)
  with open(file, 'rb') as f:
    data = f.read()
  width, height = Image.open(file).size
  got = client.post('/api/search', files={'image': ('shirt.jpg', data, 'image/jpeg')},
                    data={'request': json.dumps({'top_k': 3})})
  assert got.status_code == 200, got.text
  got = got.json()
  assert got['query']['row'] is None and len(got['results']) == 3
  # The gallery's own picture uploaded finds itself first (the same features, distance ~0).
  assert got['results'][0]['row'] == 2 and got['results'][0]['distance'] < 1e-3
  boxed = client.post('/api/search', files={'image': ('shirt.jpg', data, 'image/jpeg')},
                      data={'box': f'0,0,{width},{height // 2}'}).json()
  assert boxed['results'][0]['distance'] > got['results'][0]['distance']  # the crop differs


@pytest.mark.parametrize('body, status, message', [
    ({'query': 0, 'set': {'colour': 'navy'}}, 400, "unknown attribute 'colour'"),
    ({'query': 0, 'set': {'color': 'plaid'}}, 400, "unknown value 'plaid' for attribute 'color'"),
    ({'query': 0, 'set': {'category': 'dress'}}, 400, '"set"'),
    ({'query': 'no/such.jpg'}, 404, "'no/such.jpg' is not in the gallery"),
    ({'query': 10**6}, 404, 'is not in the gallery'),
    ({'query': 0, 'feedback': ['nope']}, 404, '"feedback"'),
    ({'query': 0, 'top_k': 0}, 400, '"top_k" must be a whole number of at least 1, got 0'),
    ({'query': 0, 'top_k': 'ten'}, 400, '"top_k"'),
    ({'query': 0, 'category': 'spaceship'}, 400, "unknown value 'spaceship' for attribute "
                                                 "'category'; valid values:"),
    ({'query': 0, 'sort': 'price'}, 400, "unknown field 'sort'; valid fields: query, set"),
    ({}, 400, '"query" is missing'),
    ([1, 2], 400, 'the request must be a JSON object'),
])
def test_bad_json_requests_are_4xx_naming_the_field(served, body, status, message):
  got = served[0].post('/api/search', json=body)
  assert got.status_code == status, got.text
  assert message in got.json()['error'], got.json()


def test_bad_uploads_and_bodies_are_4xx(served):
  client = served[0]
  post = lambda **kw: client.post('/api/search', **kw)
  got = post(content=b'{"query": 0,', headers={'content-type': 'application/json'})
  assert got.status_code == 400 and 'the request body is not JSON' in got.json()['error']
  got = post(files={'image': ('x.jpg', b'not an image at all', 'image/jpeg')})
  assert got.status_code == 400 and "\"image\" 'x.jpg' is not a decodable image" in got.json()['error']
  got = post(files={'image': ('big.bin', b'\0' * 300_000, 'image/jpeg')})
  assert got.status_code == 413 and 'over the limit of 200000' in got.json()['error']
  # A small file that decodes to 3,000 x 3,000 pixels: refused before decoding.
  got = post(files={'image': ('bomb.png', _photo((3000, 3000)), 'image/png')})
  assert got.status_code == 413 and '3000x3000 pixels, over the limit' in got.json()['error']
  for box in ('0,0,500,10', '10,10,10,50', '1,2,3', 'a,b,c,d'):
    got = post(files={'image': ('p.png', _photo(), 'image/png')}, data={'box': box})
    assert got.status_code == 400 and '"box"' in got.json()['error'], (box, got.text)
  got = post(files={'image': ('p.png', _photo(), 'image/png')}, data={'box': '0,0,10,10'})
  assert got.status_code == 400 and 'at least 32x32' in got.json()['error']
  got = post(files={'image': ('p.png', _photo(), 'image/png')},
             data={'request': json.dumps({'query': 0})})
  assert got.status_code == 400 and 'not both' in got.json()['error']


def test_images_by_row_only(served):
  client, run, _ = served
  got = client.get('/api/images/0?size=64')
  assert got.status_code == 200 and got.headers['content-type'] == 'image/jpeg'
  assert max(Image.open(io.BytesIO(got.content)).size) == 64
  assert Image.open(io.BytesIO(client.get('/api/images/0').content)).size == \
      Image.open(run.gallery.file(0)).size
  assert client.get(f'/api/images/{len(run.gallery)}').status_code == 404
  assert client.get('/api/images/0?size=5000').status_code == 400
  got = client.get('/api/images/..%2F..%2Fetc%2Fpasswd')
  assert got.status_code in (400, 404) and 'error' in got.json()


def test_an_unexpected_error_is_a_500_with_json_and_the_server_goes_on(served, monkeypatch):
  client, _, service = served

  def broken(*args):
    raise RuntimeError('boom')
  monkeypatch.setattr(service, 'search', broken)
  got = client.post('/api/search', json={'query': 0})
  assert got.status_code == 500 and 'internal error (RuntimeError)' in got.json()['error']
  monkeypatch.undo()
  assert client.post('/api/search', json={'query': 0}).status_code == 200


def test_the_page_and_the_api_docs_are_served(served):
  client = served[0]
  page = client.get('/')
  assert page.status_code == 200 and '<html' in page.text.lower()
  assert client.get('/docs').status_code == 200
  assert '/api/search' in client.get('/openapi.json').json()['paths']
