"""The precise engine: libclang over the tree prepared for a .config (docs/precise.md).

prepare.py (`make O=DIR olddefconfig prepare`, under the cache), flags.py (each built
file's compile command, from Kbuild's dry run), extract.py (libclang -> FileFacts), with
ast.py (cursors as arrays), derefs.py (raw `__iomem` dereferences from types) and native.py
(the libclang functions the Python bindings lack).
"""
