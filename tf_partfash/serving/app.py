"""The HTTP side of the service (FastAPI): the JSON API, the gallery's pictures and the page.

Every refusal is a 4xx whose JSON body is `{"error": "<one sentence>"}`; an unexpected error is a
500 of the same shape, its traceback in the server log, and the server goes on serving.
"""
from __future__ import annotations

import json
import logging
import os

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from tf_partfash.errors import UserError
from tf_partfash.serving.service import RequestError, SearchService, decode_upload, parse_request

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
log = logging.getLogger('tf_partfash.serve')


def process_memory() -> dict[str, float]:
  """This process's resident memory now and at its peak, in GB (Linux), and what of it is its
  own (anonymous) and what is file pages it maps (a compact index's signatures, read through a
  memory map: shared with the page cache and reclaimable)."""
  status = {}
  with open('/proc/self/status') as f:
    for line in f:
      key, _, value = line.partition(':')
      status[key] = value.split()
  gb = lambda key: round(int(status[key][0]) * 1024 / 1e9, 3)  # the file says kB
  return {'rss_gb': gb('VmRSS'), 'peak_rss_gb': gb('VmHWM'), 'rss_anon_gb': gb('RssAnon'),
          'rss_file_gb': gb('RssFile')}


def _error(status: int, message: str) -> JSONResponse:
  return JSONResponse({'error': message}, status_code=status)


def _answer_errors_in_json(app: FastAPI) -> None:
  @app.exception_handler(RequestError)
  async def refused(request: Request, e: RequestError):
    return _error(e.status, str(e))

  @app.exception_handler(UserError)
  async def bad_input(request: Request, e: UserError):
    return _error(400, str(e))

  @app.exception_handler(HTTPException)
  async def http_error(request: Request, e: HTTPException):  # no such route, wrong method
    return _error(e.status_code, f'{request.method} {request.url.path}: {e.detail}')

  @app.exception_handler(RequestValidationError)
  async def invalid(request: Request, e: RequestValidationError):
    first = e.errors()[0]
    where = '.'.join(str(p) for p in first.get('loc', ()) if p not in ('path', 'query'))
    return _error(400, f'{where or "request"}: {first.get("msg")} (got {first.get("input")!r})')

  @app.exception_handler(Exception)
  async def failed(request: Request, e: Exception):
    log.exception('%s %s failed', request.method, request.url.path)
    return _error(500, f'internal error ({type(e).__name__}); the server log has its traceback')


def create_app(service: SearchService) -> FastAPI:
  app = FastAPI(title='tf-partfash search',
                description='Attribute-manipulation fashion search (Ak et al., WACV 2018): a '
                'query image, attribute changes, relevance feedback.')

  _answer_errors_in_json(app)

  @app.get('/api/health')
  def health() -> dict:
    return {'status': 'ok', **service.summary, 'memory': process_memory()}

  @app.get('/api/attributes')
  def attributes() -> dict:
    return service.attributes()

  @app.post('/api/search')
  async def search(request: Request) -> JSONResponse:
    """JSON `{"query", "set", "feedback", "top_k", "category"}`, or multipart/form-data with
    `image` (a photo), optional `box` (x0,y0,x1,y1) and `request` (the same JSON, no query)."""
    length = request.headers.get('content-length')
    if length is None:
      raise RequestError('the request needs a Content-Length header', 411)
    if int(length) > service.limits.upload_bytes:
      raise RequestError(f'the request is {length} bytes, over the limit of '
                         f'{service.limits.upload_bytes} (--max_upload_mb)', 413)
    kind = request.headers.get('content-type', '')
    if kind.startswith('multipart/form-data'):
      spec, upload = await _multipart(request, service)
    else:
      try:
        body = json.loads(await request.body())
      except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f'the request body is not JSON ({e}); send a JSON object or '
                           'multipart/form-data with an "image"') from None
      spec, upload = parse_request(body, uploaded=False, manipulable=service.manipulable), None
    # Plain JSON types already: JSONResponse skips FastAPI's per-field encoding pass.
    return JSONResponse(await run_in_threadpool(service.search, spec, upload))

  @app.get('/api/images/{row}')
  def image(row: int, size: int | None = None) -> Response:
    return Response(service.image(row, size), media_type='image/jpeg',
                    headers={'Cache-Control': 'public, max-age=3600'})

  @app.get('/', include_in_schema=False)
  def page() -> FileResponse:
    return FileResponse(os.path.join(STATIC, 'index.html'))

  app.mount('/static', StaticFiles(directory=STATIC), name='static')
  return app


async def _multipart(request: Request, service: SearchService):
  form = await request.form(max_files=1, max_fields=4)
  unknown = sorted(set(form) - {'image', 'box', 'request'})
  if unknown:
    raise RequestError(f'unknown form field {unknown[0]!r}; valid: image, box, request')
  upload = form.get('image')
  if upload is None or isinstance(upload, str):
    raise RequestError('multipart/form-data needs an "image" file (the photo to search with)')
  text = form.get('request') or '{}'
  try:
    body = json.loads(text)
  except ValueError as e:
    raise RequestError(f'"request" is not JSON ({e}): {str(text)[:80]!r}') from None
  spec = parse_request(body, uploaded=True, manipulable=service.manipulable)
  data = await upload.read()
  photo = await run_in_threadpool(decode_upload, data, upload.filename or 'image',
                                  service.limits, form.get('box') or None)
  return spec, photo
