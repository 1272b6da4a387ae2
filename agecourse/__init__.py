"""agecourse: helper library of the age and gender estimation course (UTKFace, TensorFlow/Keras).

Each module has one job and names the lesson that introduces it:

=====================  ================================================================  ==========
module                 what it does                                                      lesson
=====================  ================================================================  ==========
``config``             profiles (ci / cpu / gpu), the settings object, the cache folder  01
``notebook``           the setup cell of every lesson: versions, profile, seed           01
``data``               file names to labels, rejects, image checks, splits, tf.data      01, 03
``archive``            safe extraction of .zip / .tar.gz                                 01
``download``           checksummed downloads of UTKFace with fallback mirrors            01
``synthetic``          synthetic faces (not real people) for offline runs                01
``face_drawing``       the drawing steps of one synthetic face (race code: skin only)    01
``explore``            tables and plots for looking at the data                          01-03, 05
``balance``            capping, re-sampling and sample weights for the age imbalance     04
``augment``            Keras augmentation layers                                         05
``models``             Model A (multi-task CNN), its heads, losses and compiling         06, 07
``loss_demos``         loss curves, outliers, loss and gradient scales of the two heads  07
``training``           seeds, callbacks, learning-rate schedules, time budget, curves    08
``tuning``             Keras Tuner search over Model A's learning rate and width         08
``recipes``            the profile's recipe: datasets, build and train Model A and B     08, 10
``artifacts``          saved split, Model A / B and histories, with a fit check          03, 08, 10
``evaluate``           predictions table, metrics, per-band errors, plots                09
``conformal``          age intervals by split conformal prediction, their coverage       09, 13
``calibration``        the gender probability: reliability, ECE, temperature scaling     09, 13
``backbones``          ImageNet backbones: registry, input scaling layer, weights        10
``transfer``           Model B: build on a backbone, freeze / unfreeze, cut in two       10
``transfer_training``  Model B's two-phase training, on images or cached features        10
``explain``            Grad-CAM heat maps for both heads; the worst predictions          09, 11
``bias``               errors per group of people, and one mitigation                    12
``bias_results``       the real-faces bias benchmark's results file                      12
``results``            benchmark results lessons read, shipped as package data           all
``deploy``             read photos, find faces, predict, draw, TensorFlow Lite           13
``faces``              find faces (MTCNN, five landmarks), align them like the chips     13
``example_photos``     example photos made of synthetic faces, image file encodings      13
``demo_app``           the ipywidgets app of lesson 13 and the demo page                 13
``course_models``      the shipped Model A / B: registry, weights-only loading, cards    09-13
``model_choice``       which model a lesson, the CLI or the demo uses, and from where    09-13
``job``                the end-to-end job of ``agecourse run`` / ``train``               08, 09
``cli``                the ``agecourse`` command line                                    all
``grading``            exercise checks, batch grading, reports, item analysis (package)  all
``exercise_tests``     the checks of each lesson's exercises (generated)                 all
=====================  ================================================================  ==========

The two models have the same shape: build and train from settings in :mod:`~agecourse.recipes`
(``build_model_a_for`` / ``build_model_b_for``, ``train_model_a`` / ``train_model_b``), save and load
with a check that the file fits the settings in :mod:`~agecourse.artifacts` (``model_path``,
``save_model``, ``load_model``, ``get_model`` with ``"model-a"`` or ``"model-b"``); which one a
lesson, the CLI or the demo uses (this runtime's, the shipped one, or a file) is
:mod:`~agecourse.model_choice`'s decision.

Importing the package is cheap: TensorFlow is imported only by the modules that need it.
"""

__version__ = "0.1.0"
