"""A shopper's search on a tiny untrained model: manipulation, feedback, pictures, errors
(in-process through `search_session`; test_end_to_end.py runs search.py itself)."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tf_partfash.attributes import SPECIAL_ATTRIBUTES, attribute
from tf_partfash.search import figures, retrieval
from tf_partfash.search.session import SearchRequest, search
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage.workdir import model_id


@pytest.fixture(scope='module')
def tiny_run(untrained_run):
  return untrained_run.workdir, untrained_run.gallery, untrained_run.prototypes


def test_index_and_prototypes_of_the_run(tiny_run):
  workdir, gallery, prototypes = tiny_run
  assert gallery.model_id == prototypes.model_id == model_id(workdir)
  assert gallery.signatures.shape == (len(gallery), 6, 8)
  np.testing.assert_allclose(np.linalg.norm(gallery.signatures, axis=-1), 1.0, atol=1e-5)
  assert os.path.isfile(gallery.file(0))
  assert not os.path.exists(os.path.join(workdir, 'index_test.npz.partial'))
  assert sum(int(c.sum()) for c in prototypes.counts.values()) > 0


def test_session_with_two_changes_and_feedback(tiny_run, tmp_path, capsys):
  workdir, gallery, prototypes = tiny_run
  # Two values the training split has, so they have generic representations.
  changes = {a: int(np.argmax(prototypes.counts[a])) for a in ('sleevelen', 'color')}
  sets = [f'{a}={attribute(a).values[v]}' for a, v in changes.items()]
  query = str(gallery.paths[0])
  out_json, out_png = tmp_path / 'session.json', tmp_path / 'session.png'
  returned = search(SearchRequest(workdir, query, sets, ('3', '5'), top_k=4,
                                  output_json=str(out_json), output_image=str(out_png)))
  stdout = capsys.readouterr().out
  report = json.loads(out_json.read_text())
  assert report == json.loads(json.dumps(returned))
  # The first ranking is the manipulated query's, without the query itself.
  query_sig = retrieval.manipulate(gallery.signatures[:1], [changes], prototypes)
  distances = retrieval.signature_distances(query_sig, gallery.signatures)[0]
  expected = [int(i) for i in np.lexsort((np.arange(len(gallery)), distances)) if i != 0][:4]
  assert [r['row'] for r in report['results']] == expected
  np.testing.assert_allclose([r['distance'] for r in report['results']], distances[expected],
                             rtol=1e-4, atol=1e-6)
  assert report['changes'] == {a: attribute(a).values[v] for a, v in changes.items()}
  assert set(report['results'][0]['predicted']) == set(SPECIAL_ATTRIBUTES)
  # Feedback with two picks: Eq. 5 weights (summing to V = 6) and a second ranking.
  weights = report['feedback']['weights']
  np.testing.assert_allclose(
      list(weights.values()),
      retrieval.personalization_weights(gallery.signatures[[3, 5]]), rtol=1e-5)
  assert len(report['feedback']['results']) == 4
  assert report['feedback']['picked'] == [str(gallery.paths[3]), str(gallery.paths[5])]
  # The printed tables: the first ranking's rows in order, then the second's.
  printed = [line.split()[:2] for line in stdout.splitlines() if line[:4].strip().isdigit()]
  assert printed == [[str(r['rank']), str(r['row'])] for r in report['results']
                     + report['feedback']['results']]
  assert stdout.index('after feedback') > stdout.index(f'query {query}')
  # Fig. 8 layout: 2 rows of query + text panel + 4 results (+ picks not among them, framed blue).
  shown = {r['row'] for r in report['results']}
  columns = 2 + 4 + len({3, 5} - shown)
  width = 2 * figures.MARGIN + columns * (figures.TILE_WIDTH + figures.MARGIN)
  with Image.open(out_png) as im:
    assert im.size == (width, figures.MARGIN + 2 * (figures.TITLE_HEIGHT + figures.IMAGE_HEIGHT +
                                                     figures.CAPTION_LINES * figures.LINE_HEIGHT
                                                     + figures.MARGIN))


def test_query_by_new_image_against_a_folder(tiny_run, tmp_path):
  workdir, gallery, _ = tiny_run
  run = TrainedRun.open(workdir, progress=False)
  folder = tmp_path / 'closet'
  (folder / 'sub').mkdir(parents=True)
  for k in range(3):
    shutil.copy(gallery.file(k), folder / 'sub' / f'item{k}.jpg')
  shutil.copy(gallery.file(1), tmp_path / 'photo.jpg')  # the shopper's photo of item 1
  closet = run.folder_index(str(folder))
  assert closet.paths.tolist() == ['sub/item0.jpg', 'sub/item1.jpg', 'sub/item2.jpg']
  assert (closet.labels == -1).all() and closet.image_root == str(folder)
  photo = run.embed(str(tmp_path), ['photo.jpg'])
  found, dist = retrieval.Searcher(closet.signatures, distance='squared').search(
      photo.signatures, 3)
  assert found[0, 0] == 1 and dist[0, 0] < 1e-5  # the same image: the same signatures
  os.remove(folder / 'sub' / 'item2.jpg')  # a changed folder is indexed again
  assert len(run.folder_index(str(folder))) == 2


def test_a_folder_and_a_photo_through_the_regressor(tiny_run, tmp_path, monkeypatch):
  from tf_partfash.parts import regression
  monkeypatch.setattr(regression, 'STEPS', 300)  # a quick regressor: only the plumbing is tested
  workdir, gallery, _ = tiny_run
  run = TrainedRun.open(workdir, progress=False)
  folder = tmp_path / 'closet'
  folder.mkdir()
  for k in range(2):
    shutil.copy(gallery.file(k), folder / f'item{k}.jpg')
  indexes = lambda: {f for f in os.listdir(workdir)
                     if f.startswith('index_folder_') and f.endswith('.npz')}
  before = indexes()
  by_jumps = run.folder_index(str(folder))
  by_regressor = run.folder_index(str(folder), 'regression')
  # One index per extractor, and the regressor taught on the run's dataset on first use.
  assert len(indexes() - before) == 2
  # Named per folder and extractor: the folder index and the compact index alike.
  names = {run.folder_name(str(folder)), run.folder_name(str(folder), 'regression')}
  assert indexes() - before == {f'index_{n}.npz' for n in names} and len(names) == 2
  assert any(f.startswith(f'part_regressor_v{regression.FORMAT_VERSION}_')
             for f in os.listdir(run.data.state_dir))
  extract = run.part_extractor('regression')
  assert isinstance(extract.__self__, regression.PartRegressor)
  assert by_regressor.paths.tolist() == by_jumps.paths.tolist()
  with pytest.raises(ValueError, match="unknown part extractor 'hough'"):
    run.part_extractor('hough')


@pytest.mark.parametrize('flag, message', [
    ('--set=category=Coat', "'category' is a general attribute and cannot be manipulated; special "
                            'attributes: collar, color, fastening, pattern, sleevelen'),
    ('--set=color=teal', "unknown value 'teal' for attribute 'color'; valid values: Maroon"),
    ('--set=colour=red', "unknown attribute 'colour'; valid attributes: category"),
])
def test_bad_manipulations_list_the_choices(flag, message, tmp_path):
  # Refused before the workdir (here empty) is even read.
  with pytest.raises(ValueError) as refused:
    search(SearchRequest(str(tmp_path), '0', [flag.removeprefix('--set=')]))
  assert message in str(refused.value)


def test_fig7_frames_and_panels(tmp_path):
  file = str(tmp_path / 'item.png')
  Image.new('RGB', (60, 80), (128, 128, 128)).save(file)
  picture = figures.manipulation_figure(
      figures.Tile(file, 'query'), 'collar:\n  Hood -> Mandarin',
      [figures.Tile(file, '1. d=0.1', 'green'), figures.Tile(file, '2. d=0.2')])
  top = figures.MARGIN + figures.TITLE_HEIGHT + 1
  left = lambda column: figures.MARGIN + column * (figures.TILE_WIDTH + figures.MARGIN) + 1
  assert picture.getpixel((left(2), top)) == figures.FRAMES['green']   # a match: framed
  assert picture.getpixel((left(3), top)) == (255, 255, 255)           # no match: no frame
  assert picture.getpixel((left(1) + figures.FRAME, top + figures.FRAME)) == (240, 240, 240)
  centre = (left(0) + figures.TILE_WIDTH // 2, top + figures.IMAGE_HEIGHT // 2)
  assert picture.getpixel(centre) == (128, 128, 128)                   # the query image
  with pytest.raises(ValueError, match='valid: green, blue'):
    figures.render_rows([('x', [figures.Tile(file, '', 'red')])])


def test_the_compact_backend_ranks_a_small_gallery_as_exact_search(tiny_run, capsys):
  workdir, gallery, _ = tiny_run
  query = str(gallery.paths[2])
  exact = search(SearchRequest(workdir, query, top_k=5))
  compact = search(SearchRequest(workdir, query, top_k=5, backend='compact'))
  capsys.readouterr()
  # Fewer images than the candidates re-ranked: every image is re-ranked, so the ranking is exact.
  assert [r['row'] for r in compact['results']] == [r['row'] for r in exact['results']]
  np.testing.assert_allclose([r['distance'] for r in compact['results']],
                             [r['distance'] for r in exact['results']], rtol=1e-5)
  assert compact['backend'] == 'compact' and os.path.exists(os.path.join(workdir,
                                                                         'compact_test.npz'))


def test_a_cut_out_query_is_searched_on_white_and_the_search_says_so(tiny_run, tmp_path, capsys):
  # A garment cut out of its background: transparent around it, black under the transparency
  # (what cut-out tools leave). On white it is the shop photo it was cut from.
  from tf_partfash.parts import is_cut_out, read_image
  workdir, gallery, _ = tiny_run
  photo = np.asarray(Image.open(gallery.file(0)).convert('RGB'))
  background = (photo > 235).all(axis=-1)
  alpha = np.where(background, 0, 255).astype(np.uint8)
  cut = np.where(background[..., None], 0, photo).astype(np.uint8)
  Image.fromarray(np.dstack([cut, alpha]), 'RGBA').save(tmp_path / 'cut_out.png')
  on_white = np.where(background[..., None], 255, photo).astype(np.uint8)
  Image.fromarray(on_white).save(tmp_path / 'on_white.png')
  assert is_cut_out(str(tmp_path / 'cut_out.png'))
  assert not is_cut_out(str(tmp_path / 'on_white.png'))
  np.testing.assert_array_equal(read_image(str(tmp_path / 'cut_out.png')), on_white)
  from tf_partfash.inputs.pipeline import load_pixels  # what the network sees
  np.testing.assert_array_equal(load_pixels(str(tmp_path / 'cut_out.png'), 147).numpy(),
                                load_pixels(str(tmp_path / 'on_white.png'), 147).numpy())
  run = TrainedRun.open(workdir, progress=False)
  both = run.embed(str(tmp_path), ['cut_out.png', 'on_white.png'], progress=False)
  # The same pixels, two rows of one batch: equal up to the rounding of a row's position.
  np.testing.assert_allclose(both.signatures[0], both.signatures[1], atol=1e-6)
  found = search(SearchRequest(workdir, str(tmp_path / 'cut_out.png'), top_k=3))
  assert 'transparent background composited on white' in capsys.readouterr().out
  plain = search(SearchRequest(workdir, str(tmp_path / 'on_white.png'), top_k=3))
  assert [r['row'] for r in found['results']] == [r['row'] for r in plain['results']]


def test_an_image_too_small_to_search_is_one_line_naming_it(tiny_run, tmp_path):
  from tf_partfash.errors import UserError
  workdir, _, _ = tiny_run
  Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / 'dot.png')
  with pytest.raises(UserError, match=r'dot.png: 1x1 pixels; an image needs at least 32x32'):
    search(SearchRequest(workdir, str(tmp_path / 'dot.png')))


def test_a_gallery_image_given_by_its_own_path_is_that_gallery_image(tiny_run):
  workdir, gallery, _ = tiny_run
  by_path = search(SearchRequest(workdir, os.path.abspath(gallery.file(2)), top_k=3))
  by_id = search(SearchRequest(workdir, str(gallery.paths[2]), top_k=3))
  assert by_path['query_row'] == 2 and 2 not in [r['row'] for r in by_path['results']]
  assert by_path['results'] == by_id['results']


def test_an_output_picture_of_an_unknown_format_fails_before_the_search(tiny_run, tmp_path):
  from tf_partfash.errors import UserError
  workdir, _, _ = tiny_run
  with pytest.raises(UserError, match=r'--output_image=.*fig.gif: a picture is written as '
                                      r'\.png, \.jpg, \.jpeg'):
    search(SearchRequest(str(tmp_path / 'no_run'), '0', output_image=str(tmp_path / 'fig.gif')))
