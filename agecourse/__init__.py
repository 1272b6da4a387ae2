"""agecourse: helper library of the age and gender estimation course (UTKFace, TensorFlow/Keras).

Each module follows one stage of the pipeline and names the lesson that introduces it:

=================  ==========================================================  =======
module             what it does                                                 lesson
=================  ==========================================================  =======
``config``         profiles (ci / cpu / gpu) and the settings object           01
``data``           file names to labels, rejects, checks, splits, tf.data      01, 03
``archive``        safe extraction of .zip / .tar.gz                           01
``download``       checksummed downloads with fallback mirrors                 01
``synthetic``      synthetic faces (not real people) for offline runs          01
``augment``        Keras augmentation layers                                   05
``models``         Model A (multi-task CNN) and compiling it                   06, 07
``training``       seeds, callbacks, learning curves                           08
``evaluate``       metrics, per-band errors, plots                             09
``pipeline``       saved artifacts and the end-to-end job (``agecourse run``)  03, 08
``course_models``  the shipped Model A / B: registry, hash-checked loading      09-13
=================  ==========================================================  =======

Importing the package is cheap: TensorFlow is imported only by the modules that need it.
"""

__version__ = "0.1.0"
