"""The package's layout: declarations at the top level and role packages below, data flowing one
way between them (no import cycle, no import against the order of `LAYERS`), modules and functions
of a readable size, TensorFlow only where a model runs, and no path of one machine in the
repository."""
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'tf_partfash')


def _modules() -> dict[str, str]:
  """Module name -> file, for every module of tf_partfash."""
  out = {}
  for folder, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith('.py'):
        file = os.path.join(folder, name)
        module = os.path.relpath(file, ROOT)[:-3].replace(os.sep, '.')
        out[module.removesuffix('.__init__')] = file
  return out


def import_graph(modules: dict[str, str]) -> dict[str, set[str]]:
  """Module -> the tf_partfash modules it imports anywhere in its file: at the top, inside
  functions (lazy) or for type checking alike, since each is a dependency of the code."""
  graph = {}
  for module, file in modules.items():
    with open(file, encoding='utf-8') as f:
      tree = ast.parse(f.read(), file)
    found = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        for alias in node.names:
          child = f'{node.module}.{alias.name}'
          found.add(child if child in modules else node.module)
      elif isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names)
    graph[module] = {m for m in found if m in modules and m != module}
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one node (Tarjan), each a cycle or more."""
  order, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(node):
    order[node] = low[node] = len(order)
    stack.append(node)
    on_stack.add(node)
    for nxt in sorted(graph.get(node, ())):
      if nxt not in order:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], order[nxt])
    if low[node] == order[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for node in sorted(graph):
    if node not in order:
      visit(node)
  return out


def _package_of(module: str) -> str:
  """tf_partfash.data.splits -> tf_partfash.data; a top-level module is its own package."""
  parts = module.split('.')
  return '.'.join(parts[:2])


# The role packages in the order data flows: a package imports only its own modules, the
# declarations (tf_partfash's top-level modules) and packages earlier in this list.
LAYERS = ('storage', 'data', 'parts', 'synthetic', 'inputs', 'models', 'training', 'search',
          'evaluation', 'serving')
MAX_TOP_LEVEL_MODULES = 10
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_cycle_finder_finds_a_cycle():
  assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
  assert cycles({'a': {'b'}, 'b': set()}) == []


def test_no_module_imports_itself_back():
  assert cycles(import_graph(_modules())) == []


def test_no_package_imports_itself_back():
  graph: dict[str, set[str]] = {}
  for module, imported in import_graph(_modules()).items():
    graph.setdefault(_package_of(module), set()).update(
        p for p in map(_package_of, imported) if p != _package_of(module))
  assert cycles(graph) == []


def _top_level() -> set[str]:
  """tf_partfash's top-level modules (the declarations), by name."""
  return {name[:-3] for name in os.listdir(PACKAGE)
          if name.endswith('.py') and name != '__init__.py'}


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
  """Imports of a package by one earlier in `LAYERS`, or of a package by a declaration."""
  rank = {name: k for k, name in enumerate(LAYERS)}
  declarations = _top_level()
  out = []
  for module, imported in graph.items():
    mine = (module.split('.') + [''])[1]
    for other in imported:
      theirs = (other.split('.') + [''])[1]
      if (mine in declarations and theirs not in declarations) or (
          mine in rank and theirs in rank and rank[theirs] > rank[mine]):
        out.append(f'{module} -> {other}')
  return sorted(out)


def test_the_flow_check_finds_imports_against_it():
  assert against_the_flow({
      'tf_partfash.storage.cache': {'tf_partfash.search.gallery', 'tf_partfash.config'},
      'tf_partfash.config': {'tf_partfash.data.splits'},
      'tf_partfash.search.gallery': {'tf_partfash.storage.cache', 'tf_partfash.methods'},
  }) == ['tf_partfash.config -> tf_partfash.data.splits',
         'tf_partfash.storage.cache -> tf_partfash.search.gallery']


def test_declarations_at_the_top_roles_below_and_data_flowing_one_way():
  assert len(_top_level()) <= MAX_TOP_LEVEL_MODULES, sorted(_top_level())
  packages = {m.split('.')[1] for m in _modules() if m.count('.') >= 2}
  assert packages == set(LAYERS), packages ^ set(LAYERS)
  assert against_the_flow(import_graph(_modules())) == []


def test_modules_and_functions_stay_readable():
  too_long = []
  for module, file in _modules().items():
    with open(file, encoding='utf-8') as f:
      text = f.read()
    if len(text.splitlines()) > MAX_MODULE_LINES:
      too_long.append(f'{module}: {len(text.splitlines())} lines')
    for node in ast.walk(ast.parse(text, file)):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        length = node.end_lineno - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
          too_long.append(f'{module}.{node.name}: {length} lines')
  assert too_long == []


def test_flag_checking_and_search_code_import_no_tensorflow():
  """--only_check_args stays instant, and a search on cached indexes needs no TensorFlow."""
  code = ('import sys\n'
          'import tf_partfash.methods, tf_partfash.config, tf_partfash.protocols, tf_partfash.cli\n'
          'import tf_partfash.search.session, tf_partfash.evaluation.reports\n'
          'import tf_partfash.search.feature_encoders\n'
          'import tf_partfash.evaluation.protocols.paper, tf_partfash.evaluation.protocols.adde\n'
          'import tf_partfash.evaluation.protocols.feedback\n'
          'import tf_partfash.evaluation.protocols.gallery_size\n'
          'import tf_partfash.evaluation.protocols.flam\n'
          'print("tensorflow" in sys.modules, "keras" in sys.modules)')
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
  assert result.stdout.split() == ['False', 'False'], result.stderr[-2000:]


def test_no_machine_path_in_the_repository():
  files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
  pattern = re.compile(r'(?<![\w.])/(?:work|root|home|Users|tmp/ciclone)/')
  found = []
  for name in files:
    try:
      with open(os.path.join(ROOT, name), encoding='utf-8') as f:
        text = f.read()
    except (UnicodeDecodeError, FileNotFoundError):
      continue
    found += [f'{name}:{n}' for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
  assert found == []
