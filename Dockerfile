FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY domain domain
COPY commands commands
COPY projections projections
COPY api api
COPY streams streams
COPY backtest backtest
COPY infra infra
COPY docs docs
RUN pip install --no-cache-dir .
RUN useradd --create-home tradertape && mkdir -p /app/var && chown tradertape /app/var
USER tradertape
EXPOSE 8000
CMD ["tradertape", "serve", "--host", "0.0.0.0"]
