"""The two-path part network: shapes, parameter count, part gating, save/load."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tf_partfash.attributes import ATTRIBUTES, SIGNATURE_NAMES, signature_index
from tf_partfash.models import partnet
from tf_partfash.parts.boxes import PART_NAMES

SMALL = partnet.ModelConfig(image_size=147, hidden_size=32, signature_size=16, dropout=0.0,
                            gate='extraction')
COLLAR = PART_NAMES.index('collar')
V_COLLAR = partnet.SIGNATURE_NAMES.index('collar')
V_SLEEVE = partnet.SIGNATURE_NAMES.index('sleevelen')


@pytest.fixture(scope='module')
def model():
  return partnet.build_partnet(SMALL)


def _inputs(image, present_parts=(), box=(0.0, 0.0, 0.12, 0.12)):
  boxes = np.tile(np.array(partnet.WHOLE_BOX, np.float32), (1, 6, 1))
  present = np.zeros((1, 6), bool)
  for name in present_parts:
    boxes[0, PART_NAMES.index(name)] = box
    present[0, PART_NAMES.index(name)] = True
  return {'image': tf.constant(image[None], tf.float32), 'boxes': tf.constant(boxes),
          'present': tf.constant(present)}


def test_output_shapes(model):
  out = model(partnet.dummy_inputs(SMALL, 2))
  assert out['signatures'].shape == (2, 6, 16)
  assert out['case_logits'].shape == (2, 3)
  assert {k: v.shape[1] for k, v in out['logits'].items()} == {a.name: a.num_values
                                                               for a in ATTRIBUTES}


def test_parameter_count_matches_hand_count():
  config = partnet.ModelConfig(image_size=163, hidden_size=512, signature_size=128)
  # AlexNet conv1-5: 34,944 + 307,456 + 885,120 + 663,936 + 442,624 = 2,334,080.
  # 163 px: conv5 9x9 -> pool5 4x4x256 = 4096 inputs per branch. Per branch (6 of them):
  # fc6 4096*512 (no bias) + BN 4*512 + fc7 512*128 + BN 4*128 = 2,165,248.
  # Classifiers: 128*151 + 151 = 19,479; Extract Parts? head 128*3 + 3 = 387.
  assert partnet.build_partnet(config).count_params() == 2_334_080 + 6 * 2_165_248 + 19_479 + 387


def test_case_gating_table():
  allows = dict(zip(('lower', 'sleeve', 'sleeveless'), partnet._CASE_ALLOWS.tolist()))
  assert allows['lower'] == [0] * 6
  assert allows['sleeve'] == [1] * 6
  assert allows['sleeveless'] == [1, 1, 1, 0, 0, 1]


def test_whole_box_crop_is_exactly_conv5(model):
  conv5 = tf.random.normal((2, 8, 8, 4))
  crops = partnet.roi_pool(conv5, tf.constant([partnet.WHOLE_BOX] * 2), model.pool5)
  np.testing.assert_allclose(crops.numpy(), model.pool5(conv5).numpy(), atol=1e-6)


def test_part_gating_is_real(model):
  """A branch pooling a corner part ignores pixels far outside it, and sees pixels inside it.

  The box (0, 0, 0.12, 0.12) samples conv5 cells 0..1 of 8 (crop_and_resize interpolates).
  conv5 cell i is centred on pixel 16 i + 17 with a 163-px receptive field (radius 81), so cells
  0..1 see pixels up to 114 in each direction: a change at rows and columns >= 120 cannot reach
  them, however the network is initialised.
  """
  rng = np.random.default_rng(0)
  image = rng.normal(0, 50, (147, 147, 3)).astype(np.float32)
  outside = image.copy()
  outside[120:, 120:] += 100.0
  inside = image.copy()
  inside[2:16, 2:16] += 100.0
  sig = lambda im, parts: model(_inputs(im, parts))['signatures'].numpy()[0]
  base = sig(image, ['collar'])
  np.testing.assert_allclose(sig(outside, ['collar'])[V_COLLAR], base[V_COLLAR], atol=1e-5)
  assert np.abs(sig(inside, ['collar'])[V_COLLAR] - base[V_COLLAR]).max() > 1e-3
  # Without the part (gate off) the branch sees the whole map, so the far change reaches it.
  whole = sig(image, [])
  assert np.abs(sig(outside, [])[V_COLLAR] - whole[V_COLLAR]).max() > 1e-3
  # Sleeve length pools the sleeves only: a collar-only image routes it to the whole map.
  assert np.abs(sig(outside, ['collar'])[V_SLEEVE] - base[V_SLEEVE]).max() > 1e-3


def test_head_gating_drops_parts_the_case_forbids():
  model = partnet.build_partnet(partnet.ModelConfig(image_size=147, hidden_size=8,
                                                    signature_size=8, gate='head'))
  present = tf.ones((3, 6), tf.bool)
  case_logits = tf.constant([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
  gates = model.gates(present, case_logits, training=False).numpy()
  np.testing.assert_array_equal(gates, [[0] * 6, [1] * 6, [1, 1, 1, 0, 0, 1]])
  # Training gates by extraction; the w/o parts ablation never uses a part.
  assert model.gates(present, case_logits, training=True).numpy().sum() == 18
  no_parts = partnet.build_partnet(partnet.ModelConfig(image_size=147, hidden_size=8,
                                                       signature_size=8, use_parts=False))
  assert no_parts.gates(present, case_logits, training=True).numpy().sum() == 0


def test_weights_round_trip(model, tmp_path):
  inputs = partnet.dummy_inputs(SMALL, 1)
  inputs['image'] = tf.random.normal(inputs['image'].shape, stddev=50.0)
  file = str(tmp_path / 'm.weights.h5')
  model.save_weights(file)
  other = partnet.build_partnet(SMALL)
  other.load_weights(file)
  np.testing.assert_allclose(other(inputs)['signatures'].numpy(),
                             model(inputs)['signatures'].numpy(), atol=1e-5)


def test_signature_v_comes_from_the_branch_of_its_attribute():
  """What search and the prototypes index by `signature_index` is the network's branch of that
  attribute: each branch's fc7 made to output its own constant (BatchNorm gamma 0, beta k + 1)."""
  net = partnet.build_partnet(SMALL)
  for k, name in enumerate(SIGNATURE_NAMES):
    bn = net.branches[name][1].get_layer(f'{name}_fc7_bn')
    bn.gamma.assign(np.zeros(bn.gamma.shape, np.float32))
    bn.beta.assign(np.full(bn.beta.shape, k + 1.0, np.float32))
  signatures = net(partnet.dummy_inputs(SMALL, 1))['signatures'].numpy()[0]
  np.testing.assert_allclose(signatures[0], 1.0)  # v = 0: the general path
  for k, name in enumerate(SIGNATURE_NAMES[1:], start=1):
    np.testing.assert_allclose(signatures[signature_index(name)], k + 1.0, err_msg=name)


def test_under_head_picks_extraction_offers_upper_body_parts_and_the_heads_case_picks():
  from tf_partfash.parts import extract_parts
  # A hand-drawn T-shirt (navy on white): jump detection on the image alone reads its short,
  # wide silhouette as lower body and offers no part; read as an upper-body garment it offers
  # collar, torso, chest and fastening (its stubby sleeves are not found).
  shirt = np.full((300, 200, 3), 255, np.uint8)
  shirt[80:280, 60:140] = (30, 40, 120)
  shirt[80:130, 30:170] = (30, 40, 120)
  alone, offered = extract_parts(shirt, None), extract_parts(shirt, False)
  assert alone.case == 'lower' and not alone.as_arrays()[1].any()
  np.testing.assert_array_equal(offered.as_arrays()[1], [1, 1, 1, 0, 0, 1])
  lower, sleeve, sleeveless = tf.constant([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])[:, None]
  config = partnet.ModelConfig(image_size=147, hidden_size=8, signature_size=8)
  for gate, parts in (('head', alone), ('head_picks', offered)):
    model = partnet.build_partnet(dataclasses.replace(config, gate=gate))
    present = tf.constant(parts.as_arrays()[1][None])
    gates = {case: model.gates(present, logits, training=False).numpy()[0].tolist()
             for case, logits in (('lower', lower), ('sleeve', sleeve),
                                  ('sleeveless', sleeveless))}
    if gate == 'head':  # the head can only veto: nothing was offered, nothing is used
      assert gates == {'lower': [0] * 6, 'sleeve': [0] * 6, 'sleeveless': [0] * 6}
    else:  # the head's case picks among what was offered; a sleeve not found is the whole map
      assert gates == {'lower': [0] * 6, 'sleeve': [1, 1, 1, 0, 0, 1],
                       'sleeveless': [1, 1, 1, 0, 0, 1]}
  assert config.test_case_from == 'image'
  assert dataclasses.replace(config, gate='head_picks').test_case_from == 'upper_body'
