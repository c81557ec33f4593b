FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN DJANGO_ENV=local python manage.py collectstatic --no-input -v 0

RUN useradd --create-home luffy && mkdir -p /app/var && chown luffy /app/var
USER luffy
