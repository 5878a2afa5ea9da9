# invsolve on a CUDA PyTorch base image (works on CPU-only hosts too).
#   docker build -t invsolve .
#   docker run --gpus all -v "$PWD":/data invsolve reconstruct /data/m.h5 --method tv --output /data/tv.h5
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/invsolve
COPY pyproject.toml README.md ./
COPY invsolve ./invsolve
COPY data ./data
# torch comes from the base image (CUDA build); the range in pyproject.toml accepts it,
# so pip installs only invsolve and its other dependencies (ASTRA with CUDA from PyPI).
RUN pip install . && invsolve info

RUN useradd --create-home --uid 1000 invsolve
USER invsolve
WORKDIR /data
ENTRYPOINT ["invsolve"]
CMD ["--help"]
