FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md requirements.lock ./
COPY domain domain
COPY commands commands
COPY projections projections
COPY api api
COPY streams streams
COPY backtest backtest
COPY infra infra
COPY docs docs
# the exact versions of requirements.lock (`make lock` refreshes it)
RUN pip install --no-cache-dir -c requirements.lock .
RUN useradd --create-home tradertape && mkdir -p /app/var && chown tradertape /app/var
USER tradertape
EXPOSE 8000
CMD ["tradertape", "serve", "--host", "0.0.0.0"]
